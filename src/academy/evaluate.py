"""Success rates of an agent over seeded episodes: nominal simulation and held-out reality robots.

The agent is named by a spec so that worker processes can build it: ``"expert"`` (each task's
scripted expert) or the path of a policy checkpoint. Seeds are fixed: nominal episodes use
``first_seed + k``; reality episodes spread over the eight held-out serials with seeds 10000 + k.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

from academy.sim.reality import HELD_OUT_SERIALS
from academy.sim.rollout_expert import make_env, rollout

REALITY_SEED = 10000
HELD_OUT_SEED = 100000  # nominal evaluation seeds for learned policies: never used for demonstrations
VARIATION_SEED = 300000  # the held-out variation set's scenes: layouts no demonstration or practice used
# The held-out variation set's physics, outside what the store's context data drew (friction 0.6..1.4,
# object mass 0.7..1.6): slippery surfaces and heavier parts, sizes as drawn there.
HELD_OUT_VARIATIONS = {"friction": (0.35, 0.6), "object_mass": (1.6, 2.4), "object_size": (0.92, 1.08)}


def make_agent(spec: str, task: str):
    if spec == "expert":
        from academy.sim.experts import make_expert

        return make_expert(task)
    import torch

    from academy.learn.policy import Policy, PolicyAgent

    torch.set_num_threads(1)
    return PolicyAgent(Policy.load(spec))


def _job(args: tuple) -> tuple[str, str | None, list[bool]]:
    spec, task, serial, seeds, difficulty, context_ranges = args
    env = make_env(task, difficulty, serial, **({"context_ranges": context_ranges} if context_ranges else {}))
    agent = make_agent(spec, task)
    wins = [rollout(env, agent, s).success for s in seeds]
    env.close()
    return task, serial, wins


def evaluate(
    spec: str,
    tasks: list[str],
    episodes: int = 100,
    reality: bool = True,
    first_seed: int = HELD_OUT_SEED,
    difficulty: dict[str, Any] | None = None,
    workers: int | None = None,
    on_job: Callable[[str, str | None, list[bool]], None] | None = None,
    context_ranges: dict | None = None,
) -> dict:
    """{task: {nominal_success, nominal_episodes, reality_success, reality_episodes, reality_by_serial}}.

    ``context_ranges``: the simulation's episodes draw their physics from these (one context per
    seed); ``HELD_OUT_VARIATIONS`` with ``first_seed=VARIATION_SEED`` is the held-out variation set."""
    workers = workers or min(2, os.cpu_count() or 1)
    if context_ranges and reality:
        raise ValueError("reality robots have their own physics: evaluate drawn contexts with reality=False")
    jobs = []
    for task in tasks:
        per_job = max(1, -(-episodes // (2 * workers)))
        seeds = list(range(first_seed, first_seed + episodes))
        jobs += [(spec, task, None, seeds[i : i + per_job], difficulty, context_ranges)
                 for i in range(0, episodes, per_job)]
        if reality:
            per = -(-episodes // len(HELD_OUT_SERIALS))
            jobs += [(spec, task, s, [REALITY_SEED + k for k in range(per)], difficulty, None) for s in HELD_OUT_SERIALS]
    tally: dict = {t: {"nominal": [], "reality": {}} for t in tasks}
    with ProcessPoolExecutor(workers) as pool:
        for task, serial, wins in pool.map(_job, jobs):
            if serial is None:
                tally[task]["nominal"] += wins
            else:
                tally[task]["reality"][serial] = wins
            if on_job:
                on_job(task, serial, wins)
    out = {}
    for task, t in tally.items():
        real = [w for ws in t["reality"].values() for w in ws]
        out[task] = {"nominal_success": sum(t["nominal"]) / len(t["nominal"]), "nominal_episodes": len(t["nominal"])}
        if reality:
            out[task].update({
                "reality_success": sum(real) / len(real), "reality_episodes": len(real),
                "reality_by_serial": {s: sum(w) / len(w) for s, w in t["reality"].items()},
            })
    return out
