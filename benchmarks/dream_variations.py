"""Dreamed variations of one demonstration: how fast, and how many hold up in the physics.

    python benchmarks/dream_variations.py --model M --policy P --source DATASET#EPISODE \
        --variations 10000 --check 200

Dreams ``--variations`` variations of the episode (``academy.dream.variations``) on this
machine's cores and writes the kept ones to a scratch dataset (deleted afterwards), timing it.
Then, from the same dreams, replays up to ``--check`` kept and ``--check`` rejected ones open
loop in the MuJoCo workcell, and runs the policy itself in closed loop in the physics from
the first ``--check`` variations' scenes. That is the reference: what the policy really
achieves there. Baseline in the same run: the seconds the physics takes per episode of the
policy, scaled to the same number of variations on the same workers (``physics_seconds``),
and the ratio of the two times.

Writes benchmarks/results/dream_variations.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from academy.dream.variations import SPAWN, VariationConfig, check_in_physics, dream

GOAL_SECONDS = 300.0


def _policy_job(args: tuple) -> list[bool]:
    policy_path, task, seed, items = args
    import torch

    from academy.learn.policy import Policy, PolicyAgent

    torch.set_num_threads(1)  # one thread per worker: more oversubscribes the cores (about 10x slower)
    from academy.sim.env import WorkcellEnv

    agent = PolicyAgent(Policy.load(policy_path))
    env = WorkcellEnv(task)
    wins = []
    for objects, context in items:
        obs, _ = env.reset(seed, context=context, objects=np.asarray(objects).reshape(-1, 7))
        agent.reset(obs)
        while True:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            if terminated or truncated:
                wins.append(bool(info["success"]))
                break
    env.close()
    return wins


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--source", required=True, help="DATASET#EPISODE")
    p.add_argument("--variations", type=int, default=10000)
    p.add_argument("--check", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-uncertainty", type=float, default=2.0)
    p.add_argument("--judge", default="task", help="task (the task's own rule) or head (the model's success head)")
    p.add_argument("--settle", type=int, default=VariationConfig.settle_steps,
                   help="steps a dream goes on after it is called a success (the release played out)")
    p.add_argument("--recheck", action="store_true", help="a dream's call must still hold after the settling")
    p.add_argument("--out", default="benchmarks/results/dream_variations.json")
    args = p.parse_args()
    dataset, _, episode = args.source.rpartition("#")
    scratch = Path(tempfile.mkdtemp(prefix="dreams-"))
    try:
        cfg = VariationConfig(variations=args.variations, max_uncertainty=args.max_uncertainty, judge=args.judge,
                              settle_steps=args.settle, settle_recheck=args.recheck)
        summary = dream(args.model, args.policy, dataset, int(episode), scratch / "dreams", cfg,
                        on_batch=lambda done, kept: print(f"{done}/{args.variations} dreamed, {kept} kept", flush=True))
        written_mb = sum(f.stat().st_size for f in scratch.rglob("*") if f.is_file()) / 1e6
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    physics = check_in_physics(summary, args.check, args.workers)
    rows = summary["rollouts"][: args.check]
    items = [(r["objects"], r["context"]) for r in rows]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers, mp_context=SPAWN) as pool:
        parts = list(pool.map(_policy_job, [(args.policy, summary["task"], summary["seed"], items[i::args.workers])
                                            for i in range(args.workers)]))
    per_episode = (time.time() - t0) * args.workers / max(len(items), 1)  # seconds of one core per episode
    wins = [w for part in parts for w in part]
    physics_seconds = per_episode * args.variations / args.workers
    result = {k: v for k, v in summary.items() if k != "rollouts"}
    result.update({
        "command": "python benchmarks/dream_variations.py " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
            for k, v in vars(args).items() if k != "out" and v is not False),
        "written_mb": round(written_mb, 1),
        "physics_replay_of_dreams": physics,
        "policy_in_physics_same_scenes": {"episodes": len(wins), "succeeded": int(sum(wins)),
                                          "share": round(float(np.mean(wins)), 3) if wins else None},
        "baseline_physics_seconds": round(physics_seconds, 1),
        "speed_ratio_physics_over_dream": round(physics_seconds / summary["seconds"], 2),
        "goal_seconds": GOAL_SECONDS, "goal_met": summary["seconds"] <= GOAL_SECONDS,
    })
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
