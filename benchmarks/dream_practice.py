"""Practice in imagination: the policy with dreams against the policy without, on the held-out
variation set, with zero extra real episodes.

    python benchmarks/dream_practice.py --policy P --model academy-data/world-models/default \
        --data academy-data/datasets/ctx-dart005 --data academy-data/datasets/ctx-policy --minutes 12 --episodes 50

The baseline is the learned policy itself, in the same run. Residual PPO (academy.practice) runs
in the world model (``--dream``), branching from the stored episodes' real states, with each
branch's physics drawn from ``--context`` (default: friction 0.35..1.4, object mass 0.7..2.4,
which reaches beyond the recorded 0.6..1.4 and 0.7..1.6). Its selection evaluations run in the
simulation under the same ranges, on seeds 200000.. (practice's own). Then both policies are
evaluated by ``academy.evaluate`` on the held-out variation set (``HELD_OUT_VARIATIONS``:
friction 0.35..0.6, object mass 1.6..2.4, scene seeds 300000.., layouts never demonstrated) and
on the nominal held-out seeds (100000..) to see that nothing was lost there. The gain is in
points, with its standard error.

Writes benchmarks/results/dream_practice.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from academy.evaluate import HELD_OUT_SEED, HELD_OUT_VARIATIONS, VARIATION_SEED, evaluate
from academy.learn.policy import Policy
from academy.practice.run import PracticeConfig, practice

RESULTS = Path(__file__).parent / "results"
GOAL_POINTS = 20.0
DREAM_CONTEXT = {"friction": (0.35, 1.4), "object_mass": (0.7, 2.4), "object_size": (0.92, 1.08)}


def _both(spec: str, tasks: list[str], episodes: int) -> dict:
    return {"variations": evaluate(spec, tasks, episodes, reality=False, first_seed=VARIATION_SEED,
                                   context_ranges=HELD_OUT_VARIATIONS),
            "nominal": evaluate(spec, tasks, episodes, reality=False, first_seed=HELD_OUT_SEED)}


def gains(before: dict, after: dict, tasks: list[str], episodes: int) -> dict:
    """{split: {task: {points, standard_error}}}: after minus before, in points of success."""
    gain = {}
    for split in ("variations", "nominal"):
        for t in tasks:
            a, b = after[split][t]["nominal_success"], before[split][t]["nominal_success"]
            se = np.sqrt((a * (1 - a) + b * (1 - b)) / episodes)
            gain.setdefault(split, {})[t] = {"points": round(100 * (a - b), 1), "standard_error": round(100 * se, 1)}
    return gain


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", required=True)
    p.add_argument("--model", default="academy-data/world-models/default")
    p.add_argument("--data", action="append", required=True, help="datasets the branches start from (repeat)")
    p.add_argument("--out", default="academy-data/practice/dream")
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--task", action="append", help="tasks (default: handover and place_part)")
    p.add_argument("--horizon", type=int, default=40)
    p.add_argument("--penalty", type=float, default=1.0)
    p.add_argument("--judge", default="task", help="what ends a branch in success: task (the task's rule) or head")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    tasks = args.task or ["handover", "place_part"]
    missing = [t for t in tasks if t not in Policy.load(args.policy).tasks]
    if missing:
        raise SystemExit(f"the policy does not know {missing}")
    cfg = PracticeConfig(policy=args.policy, out=args.out, tasks=tasks, minutes=args.minutes, seed=args.seed,
                         dream_model=args.model, dream_data=args.data, dream_horizon=args.horizon,
                         dream_context=DREAM_CONTEXT, dream_penalty=args.penalty, dream_judge=args.judge,
                         eval_context=DREAM_CONTEXT)
    t0 = time.time()
    summary = practice(cfg, on_update=lambda r: print(
        f"update {r['update']:4d} steps {r['env_steps']:7d} {r['seconds']:6.0f}s reward/step {r['reward_per_step']:.3f} "
        f"dreamed success {r['train_success']} eval {r.get('eval', '')}", flush=True))
    seconds = time.time() - t0
    before = _both(args.policy, tasks, args.episodes)
    after = _both(str(Path(args.out) / "policy"), tasks, args.episodes)
    gain = gains(before, after, tasks, args.episodes)
    mean_gain = float(np.mean([g["points"] for g in gain["variations"].values()]))
    result = {
        "command": "python benchmarks/dream_practice.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k not in ("data", "task"))
            + "".join(f" --data {d}" for d in args.data),
        "tasks": tasks, "held_out_variations": {k: list(v) for k, v in HELD_OUT_VARIATIONS.items()},
        "dream_context": {k: list(v) for k, v in DREAM_CONTEXT.items()},
        "practice": {"seconds": round(seconds, 1), "updates": summary["updates"], "dreamed_steps": summary["env_steps"],
                     "best": summary["best"], "before": summary["before"], "time_share": summary["time_share"]},
        "real_episodes_added": 0,
        "before": before, "after": after, "gain": gain,
        "mean_gain_points_on_variations": round(mean_gain, 1), "goal_points": GOAL_POINTS,
        "goal_met": mean_gain >= GOAL_POINTS,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dream_practice.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k in ("before", "after", "gain", "practice")}, indent=1))


if __name__ == "__main__":
    main()
