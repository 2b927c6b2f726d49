"""The exam: every skill on fixed seeded scenes, nominal and on held-out reality robots, with safety.

A skill's exam is the same every time: nominal scenes with seeds ``EXAM_SEED + k`` and, on each
held-out reality robot, seeds ``EXAM_REALITY_SEED + k``. Each episode records success, its
length and the safety monitor's counts (``academy.exam.safety``). The exam also measures the
policy's inference latency and memory in a fresh process and lists the hardware profiles it
fits (``academy.exam.profiles``). Episodes run in worker processes; within a worker all scenes
step together and the policy acts on them as one batch.

The report (``ExamReport.to_dict``, written as JSON) is what the release gate reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from academy.exam.safety import SafetyLimits, summarize
from academy.sim.env import CONTROL_DT
from academy.sim.reality import HELD_OUT_SERIALS
from academy.sim.tasks import REGISTRY

EXAM_SEED = 300000  # nominal exam scenes: never used for demonstrations, practice or evaluation
EXAM_REALITY_SEED = 30000


@dataclass
class ExamConfig:
    episodes: int = 24  # nominal scenes per skill
    reality_episodes: int = 16  # per skill, spread over the held-out reality robots
    serials: tuple[str, ...] = tuple(HELD_OUT_SERIALS)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    difficulty: dict[str, dict[str, Any]] = field(default_factory=dict)  # per skill; default difficulty if absent
    workers: int = 0  # 0: min(2, cores)
    latency_calls: int = 2000

    def to_dict(self) -> dict:
        return {"episodes": self.episodes, "reality_episodes": self.reality_episodes, "serials": list(self.serials),
                "limits": self.limits.to_dict(), "difficulty": self.difficulty, "latency_calls": self.latency_calls}


def scenes(skills: list[str], cfg: ExamConfig) -> list[tuple[str, str | None, int]]:
    """The exam's fixed scenes: (skill, serial or None for nominal, seed)."""
    out = [(t, None, EXAM_SEED + k) for t in skills for k in range(cfg.episodes)]
    for t in skills:
        for k in range(cfg.reality_episodes):
            serial = cfg.serials[k % len(cfg.serials)]
            out.append((t, serial, EXAM_REALITY_SEED + k // len(cfg.serials)))
    return out


def _run_scenes(args: tuple) -> list[dict]:
    """Worker: run one episode per scene, all scenes stepping together."""
    spec, chunk, limits, difficulty = args
    import torch

    from academy.learn.policy import Policy, env_obs_batch
    from academy.sim.experts import make_expert
    from academy.sim.rollout_expert import make_env

    torch.set_num_threads(1)
    envs, obs = [], []
    for task, serial, seed in chunk:
        env = make_env(task, difficulty.get(task), serial)
        env.enable_safety(SafetyLimits.from_dict(limits))
        envs.append(env)
        obs.append(env.reset(seed)[0])
    n = len(chunk)
    if spec == "expert":
        agents = [make_expert(task) for task, _, _ in chunk]
        for a, o in zip(agents, obs):
            a.reset(o)
        policy = None
    else:
        policy = Policy.load(spec)
        policy.reset(n)
    done, success, steps = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, int)
    while not done.all():
        actions = policy.act(env_obs_batch(obs)) if policy else [None] * n
        for i in np.flatnonzero(~done):
            action = actions[i] if policy else agents[i].act(obs[i])
            obs[i], _, terminated, truncated, info = envs[i].step(action)
            if terminated or truncated:
                done[i], success[i], steps[i] = True, bool(info["success"]), info["t"]
    records = []
    for (task, serial, seed), env, ok, t in zip(chunk, envs, success, steps):
        records.append({"skill": task, "serial": serial, "seed": seed, "success": bool(ok), "steps": int(t),
                        "safety": env.safety_log()[-1]})
        env.close()
    return records


def policy_digest(policy_dir: str | Path) -> str:
    """sha256 over a policy folder's weight and config files (what identifies a policy)."""
    h = hashlib.sha256()
    for f in sorted(Path(policy_dir).glob("*")):
        if f.suffix in (".pt", ".json") and f.name != "train.json":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def run_exam(policy: str, skills: list[str] | None = None, cfg: ExamConfig | None = None,
             on_episodes: Callable[[int, int], None] | None = None, measure: bool = True) -> dict:
    """Examine ``policy`` (a checkpoint folder, or ``"expert"``) on ``skills``; the report as a dict.

    A skill the policy was not trained for is examined all the same: it fails, and the report
    says ``"missing": true`` (a skill once mastered stays in the exam for good).
    """
    cfg = cfg or ExamConfig()
    t0 = time.time()
    known = None
    if policy != "expert":
        from academy.learn.checkpoint import trained_tasks

        known = trained_tasks(policy)
    skills = list(skills) if skills else (known or list(REGISTRY))
    unknown = [s for s in skills if s not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown skill(s) {unknown}; known: {list(REGISTRY)}")
    runnable = [s for s in skills if known is None or s in known]
    todo = scenes(runnable, cfg)
    workers = cfg.workers or min(2, os.cpu_count() or 1)
    n_chunks = min(len(todo), 2 * workers) if todo else 0
    chunks = [todo[i::n_chunks] for i in range(n_chunks)]
    records: list[dict] = []
    if chunks:
        with ProcessPoolExecutor(workers) as pool:
            jobs = [(policy, c, cfg.limits.to_dict(), cfg.difficulty) for c in chunks]
            for recs in pool.map(_run_scenes, jobs):
                records += recs
                if on_episodes:
                    on_episodes(len(records), len(todo))
    report: dict = {"policy": str(policy), "policy_sha256": policy_digest(policy) if policy != "expert" else None,
                    "config": cfg.to_dict(), "skills": {}}
    for skill in skills:
        report["skills"][skill] = _skill_summary([r for r in records if r["skill"] == skill], cfg, skill not in runnable)
    report["episodes"] = sorted(records, key=lambda r: (r["skill"], r["serial"] or "", r["seed"]))
    report["exam_seconds"] = round(time.time() - t0, 1)
    if measure and policy != "expert":
        from academy.exam.profiles import measure_inference

        report["inference"] = measure_inference(policy, cfg.latency_calls)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def _skill_summary(recs: list[dict], cfg: ExamConfig, missing: bool) -> dict:
    nominal = [r for r in recs if r["serial"] is None]
    reality = [r for r in recs if r["serial"] is not None]
    if missing:  # not in the policy: every scene counts as a failure
        return {"missing": True, "nominal": {"successes": 0, "episodes": cfg.episodes},
                "reality": {"successes": 0, "episodes": cfg.reality_episodes}, "episode_seconds": None,
                "safety": summarize([])}
    wins = [r["steps"] * CONTROL_DT for r in recs if r["success"]]
    return {
        "missing": False,
        "nominal": {"successes": sum(r["success"] for r in nominal), "episodes": len(nominal)},
        "reality": {"successes": sum(r["success"] for r in reality), "episodes": len(reality)},
        "episode_seconds": round(float(np.mean(wins)), 2) if wins else None,
        "safety": summarize([r["safety"] for r in recs]),
    }


def save_report(report: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1))


def load_report(path: str | Path) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"exam report {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"exam report {path} is not valid JSON: {e}") from None
    for key in ("skills", "config"):
        if key not in report:
            raise ValueError(f"exam report {path} has no '{key}' field")
    return report
