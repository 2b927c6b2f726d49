"""How much a constant hand offset costs a learned policy: why practice explores with held noise.

    python benchmarks/practice_sensitivity.py --policy P --task place_part --episodes 32

Adds a residual whose only output is a constant (its bias: each of the 8 hand-space numbers
drawn once from N(0, m^2), one unit = 5 mm of hand offset or 2 mm of grip) to the policy, and
measures nominal success over fixed seeds (200000..) for each m. Writes
benchmarks/results/practice_sensitivity.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from academy.learn.policy import Policy
from academy.practice.residual import ResidualActorCritic, default_scale, feature_dim
from academy.practice.run import evaluate_scenes


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", required=True)
    p.add_argument("--task", default="place_part")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--sizes", default="0,0.1,0.3")
    args = p.parse_args()
    policy = Policy.load(args.policy, base_only=True)
    n = len(policy.tasks)
    out = {"policy": args.policy, "task": args.task, "episodes": args.episodes, "success": {}}
    for m in [float(x) for x in args.sizes.split(",")]:
        torch.manual_seed(0)
        net = ResidualActorCritic(feature_dim(n, policy.cfg.obs_dims), n, default_scale("hands"), hidden=64)
        with torch.no_grad():
            net.actor[-1].bias.copy_(torch.randn(8) * m)
        policy.residual = net
        out["success"][str(m)] = evaluate_scenes(policy, [args.task], args.episodes, {args.task: ({}, None)})[args.task]
        print(m, out["success"][str(m)], flush=True)
    path = Path(__file__).parent / "results" / "practice_sensitivity.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
