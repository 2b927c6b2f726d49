"""Simulation throughput: raw mj_step, the single env, and the batched env, in one run.

    python benchmarks/sim_throughput.py

Writes benchmarks/results/sim_throughput.json. The baseline is raw ``mj_step`` on the same
compiled model (after a reset of the same task), timed in the same process; ratios compare
physics steps per second (25 physics steps per 50 ms control step).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import mujoco
import numpy as np

from academy.sim import robot
from academy.sim.batched import BatchedWorkcellEnv
from academy.sim.env import WorkcellEnv

OUT = Path(__file__).parent / "results" / "sim_throughput.json"


def _rate(fn, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="sort_cells")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()

    env = WorkcellEnv(args.task)
    env.reset(0)
    m, d = env.model, env.data
    sub = env.n_substeps

    def raw():
        mujoco.mj_step(m, d, nstep=100)
        return 100

    raw_rate = _rate(raw, args.seconds)  # physics steps/s, one thread

    env.reset(0)
    home = np.array(robot.HOME)

    def single():
        env.step(home)
        if env.t >= env.max_steps - 1:
            env.reset(0)
        return sub

    single_rate = _rate(single, args.seconds)

    batch = BatchedWorkcellEnv(args.task, n=args.batch, nthread=args.threads)
    batch.reset(0)
    actions = np.tile(home, (args.batch, 1))

    def batched_physics():
        batch.physics()
        return args.batch * sub

    def batched_env():
        batch.step(actions)
        return args.batch * sub

    batched_physics_rate = _rate(batched_physics, args.seconds)
    batched_env_rate = _rate(batched_env, args.seconds)

    result = {
        "task": args.task,
        "threads": args.threads,
        "batch": args.batch,
        "raw_mj_step_physics_steps_per_s": raw_rate,
        "single_env_control_steps_per_s": single_rate / sub,
        "batched_physics_steps_per_s": batched_physics_rate,
        "batched_env_control_steps_per_s": batched_env_rate / sub,
        "ratio_single_env_to_raw": single_rate / raw_rate,
        "ratio_batched_physics_to_raw": batched_physics_rate / raw_rate,
        "ratio_batched_env_to_raw": batched_env_rate / raw_rate,
        "ratio_batched_physics_to_raw_per_thread": batched_physics_rate / raw_rate / args.threads,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    for k, v in result.items():
        print(f"{k:45s} {v:.3f}" if isinstance(v, float) else f"{k:45s} {v}")


if __name__ == "__main__":
    main()
