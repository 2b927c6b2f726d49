"""Which of the reality robots' differences breaks a policy: one factor at a time, nominal otherwise.

    python benchmarks/reality_gap.py --policy P --task handover --episodes 24

Each condition changes one thing of the nominal simulation to the size it has on reality
robots (sim/reality.py): action latency of 1 and 2 control steps, joint sensor noise, object
sensor noise, per-joint encoder calibration offsets (std 8 mrad), arm backlash (2.5 mrad), and
the physics terms (friction, masses, sizes, gains, damping) at the reality ranges. Success over
fixed seeds (200000..). ``--policy expert`` measures the scripted experts instead. Writes
benchmarks/results/reality_gap_<task>_<policy folder name or expert>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from academy.sim import robot
from academy.sim.env import Actuation
from academy.sim.randomize import RandomizationConfig, Term
from academy.sim.reality import BACKLASH_RANGE, CALIBRATION_STD, REALITY_RANGES
from academy.sim.rollout_expert import rollout

PHYSICS = ("friction", "object_mass", "object_size", "actuator_gain", "joint_damping")


def only(**terms) -> RandomizationConfig:
    base = RandomizationConfig().only()
    return RandomizationConfig({**base.terms, **{k: Term(*v) for k, v in terms.items()}})


CONDITIONS = {
    "nominal": {},
    "latency 1 step": {"randomization": only(action_latency=(1, 1))},
    "latency 2 steps": {"randomization": only(action_latency=(2, 2))},
    "joint noise 2.5 mrad": {"randomization": only(proprio_noise=(0.0025, 0.0025))},
    "object noise 2.5 mm": {"randomization": only(object_noise=(0.0025, 0.0025))},
    "calibration offsets": {"calibration": CALIBRATION_STD},
    "backlash": {"backlash": float(np.mean(BACKLASH_RANGE))},
    "physics terms at reality ranges": {"randomization": only(**{k: REALITY_RANGES[k] for k in PHYSICS})},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", required=True)
    p.add_argument("--task", default="handover")
    p.add_argument("--episodes", type=int, default=24)
    args = p.parse_args()
    from academy.evaluate import make_agent
    from academy.sim.env import WorkcellEnv

    arm = np.array(["shoulder" in j or "elbow" in j or "wrist" in j for j in robot.JOINTS])
    out = {"policy": args.policy, "task": args.task, "episodes": args.episodes, "success": {}}
    for name, cond in CONDITIONS.items():
        env = WorkcellEnv(args.task, randomization=cond.get("randomization"))
        agent = make_agent(args.policy, args.task)
        wins = 0
        for k in range(args.episodes):
            rng = np.random.default_rng([k, 99])
            env.actuation = Actuation(
                calibration=np.clip(rng.normal(0, cond.get("calibration", 0.0), robot.N_ACTUATORS), -0.02, 0.02),
                backlash=np.where(arm, cond.get("backlash", 0.0), 0.0),
            )
            wins += rollout(env, agent, 200000 + k).success
        out["success"][name] = wins / args.episodes
        print(f"{name:35s} {wins}/{args.episodes}", flush=True)
    path = Path(__file__).parent / "results" / f"reality_gap_{args.task}_{Path(args.policy).name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
