"""The robot runtime's control loop: deadline misses per 10,000 control steps, against physics alone.

    python benchmarks/fleet_runtime.py [--policy CHECKPOINT] [--shadow CHECKPOINT] [--steps 10000]

Writes benchmarks/results/fleet_runtime.json. One reality robot (AH1-3300) works handover
episodes with ``academy.fleet.robot.run_episode`` until ``--steps`` control steps are done:
policy inference plus one robot step per control step, each against the 50 ms deadline of the
20 Hz loop; then again with a shadow candidate beside it (two inferences per step). Baseline in
the same run: the same robot stepped with the robot's own hold action only (physics, no
inference), so the ratio says what the policy costs the loop. Defaults: the two shipped
handover policies (tests/assets/policies), materialized in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from academy.exam.safety import SafetyLimits
from academy.fleet.robot import run_episode
from academy.learn.policy import Policy
from academy.sim.reality import RealityRobot

OUT = Path(__file__).parent / "results" / "fleet_runtime.json"
ASSETS = Path(__file__).parents[1] / "tests" / "assets" / "policies"
DEADLINE_MS = 50.0


def shipped(name: str, dest: Path) -> Path:
    from academy.learn.checkpoint import load_model, save_checkpoint

    return save_checkpoint(dest / name, load_model(ASSETS / name), json.loads((ASSETS / name / "train.json").read_text()))


def loop(policy, steps: int, shadow=None) -> dict:
    robot = RealityRobot("AH1-3300", "handover")
    limits = SafetyLimits(joint_limit_margin=0.0)
    ms, episodes, seed = [], 0, 0
    t0 = time.perf_counter()
    while len(ms) < steps:
        ep = run_episode(robot, policy, seed, limits, shadow=shadow, deadline_ms=DEADLINE_MS)
        ms.extend(ep.step_ms)
        episodes, seed = episodes + 1, seed + 1
    wall = time.perf_counter() - t0
    ms = np.array(ms[:steps])
    return {"control_steps": int(len(ms)), "episodes": episodes, "misses": int((ms > DEADLINE_MS).sum()),
            "misses_per_10k": float((ms > DEADLINE_MS).sum() * 1e4 / len(ms)), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "steps_per_s": float(len(ms) / wall)}


def physics_only(steps: int) -> dict:
    robot = RealityRobot("AH1-3300", "handover")
    obs, _ = robot.reset(0)
    hold = np.asarray(obs["proprio"][: len(obs["proprio"]) // 2], np.float32)
    ms = []
    while len(ms) < steps:
        t0 = time.perf_counter()
        obs, _, term, trunc, _ = robot.step(hold)
        ms.append((time.perf_counter() - t0) * 1e3)
        if term or trunc:
            robot.reset(len(ms))
    ms = np.array(ms)
    return {"control_steps": steps, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "misses_per_10k": float((ms > DEADLINE_MS).sum() * 1e4 / len(ms))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", type=Path)
    ap.add_argument("--shadow", type=Path)
    ap.add_argument("--steps", type=int, default=10_000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    policy = Policy.load(args.policy or shipped("handover-enc", tmp))
    candidate = Policy.load(args.shadow or shipped("handover-plain", tmp))
    res = {"deadline_ms": DEADLINE_MS, "baseline_physics_only": physics_only(args.steps),
           "loop": loop(policy, args.steps), "loop_with_shadow": loop(policy, args.steps, shadow=candidate)}
    base = res["baseline_physics_only"]["p50_ms"]
    res["ratio_p50_loop_over_physics"] = res["loop"]["p50_ms"] / base
    res["ratio_p50_shadow_loop_over_physics"] = res["loop_with_shadow"]["p50_ms"] / base
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
