"""Where the robot can pass the lying part between its hands: for a grid of part centres, the IK
pose error (position plus rotation, ``ArmIK``'s measure) of the right hand's top-down grasp of
one end and the left hand's of the other, each at its better yaw. Reproduces the figures behind
``academy.watch.retarget.HANDOVER_PASS``; baseline in the same run: the handover expert's
transfer height (1.06 m).

    python benchmarks/pass_reach.py        # writes benchmarks/results/pass_reach.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from academy.sim import robot
from academy.sim.experts.base import REST
from academy.sim.experts.handover import GRASP_ABOVE_CENTRE
from academy.sim.experts.ik import ArmIK, yaw_down_quat
from academy.sim.world import load_model
from academy.watch.retarget import HANDOVER_PASS, PART_END_GRASP


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/pass_reach.json")
    args = ap.parse_args()
    model = load_model()
    ik = {side: ArmIK(model, side, REST[side]) for side in robot.SIDES}
    home = np.array(robot.HOME, float)
    u, up = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, GRASP_ABOVE_CENTRE])  # the part lies along y

    def errors(c: np.ndarray) -> tuple[float, float]:
        def best(side, at):
            return min(ik[side].solve(home, at, yaw_down_quat(y), iterations=100)[1] for y in (np.pi / 2, -np.pi / 2))
        return best("right", c - 0.035 * u + up), best("left", c + PART_END_GRASP * u + up)

    grid = []
    for x, y, z in itertools.product(np.arange(0.30, 0.45, 0.02), np.arange(-0.06, 0.061, 0.02), np.arange(1.00, 1.13, 0.03)):
        er, el = errors(np.array([x, y, z]))
        grid.append({"centre": [round(x, 3), round(y, 3), round(z, 3)], "right_mm": 1000 * er, "left_mm": 1000 * el})
    at_pass = errors(HANDOVER_PASS)
    expert = errors(np.array([HANDOVER_PASS[0], HANDOVER_PASS[1], 1.06]))
    out = {"pass": HANDOVER_PASS.tolist(), "pass_mm": [1000 * e for e in at_pass],
           "expert_height_mm": [1000 * e for e in expert],
           "ratio_worse_arm_expert_height_over_pass": max(expert) / max(max(at_pass), 1e-6),
           "best_on_grid": sorted(grid, key=lambda g: max(g["right_mm"], g["left_mm"]))[:5]}
    print(json.dumps({k: v for k, v in out.items() if k != "best_on_grid"}, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**out, "grid": grid}, indent=1))


if __name__ == "__main__":
    main()
