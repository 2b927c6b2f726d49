"""Learned-policy success: one network for every task, against one network per task.

    python benchmarks/learn_success.py --minutes 10 --episodes 100 [--per-task]
    python benchmarks/learn_success.py --dataset <demos> --one <checkpoint> --steps 20421 --per-task

--one takes an already trained one-for-all checkpoint (its train.json gives the budget) instead
of training it. --steps fixes the optimiser steps of every training (the time cap is then
3x --minutes), so the comparison does not depend on how busy the machine is.

Collects 100 expert demonstrations per task (seeds 0..99) if the dataset does not exist, trains
the one policy within the time budget on this machine's cores, and evaluates it on held-out
seeds (100000..) in the nominal simulation and on the held-out reality robots. With --per-task
it also trains one network per task with the same budget each and compares nominal success.
Writes benchmarks/results/learn_success.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from academy.data.collect import collect
from academy.evaluate import evaluate
from academy.learn.train import TrainConfig, train
from academy.sim.tasks import REGISTRY

OUT = Path(__file__).parent / "results" / "learn_success.json"


def _summary(info: dict) -> dict:
    return {k: v for k, v in info.items() if k != "loss_curve"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="academy-data/datasets/expert100")
    p.add_argument("--demos", type=int, default=100)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--arch", default="mlp")
    p.add_argument("--out", default="academy-data/policies/bench")
    p.add_argument("--steps", type=int, default=None, help="fixed optimiser steps per training")
    p.add_argument("--one", default=None, help="an existing one-for-all checkpoint to compare against")
    p.add_argument("--per-task", action="store_true")
    p.add_argument("--skip-train", action="store_true", help="evaluate existing checkpoints")
    args = p.parse_args()
    tasks = list(REGISTRY)
    if not Path(args.dataset, "meta/info.json").exists():
        for task in tasks:
            collect(task, args.demos, args.dataset)
    if args.steps:
        cfg = TrainConfig(arch=args.arch, max_minutes=3 * args.minutes, max_steps=args.steps)
    else:
        cfg = TrainConfig(arch=args.arch, max_minutes=args.minutes, max_steps=10**9)
    result: dict = {"dataset": args.dataset, "minutes": args.minutes, "steps": args.steps,
                    "episodes": args.episodes, "arch": args.arch}
    one = Path(args.one) if args.one else Path(args.out) / f"all-{args.arch}"
    t0 = time.time()
    trained = args.skip_train or args.one
    info = json.loads((one / "train.json").read_text()) if trained else train(args.dataset, one, cfg)
    result["one_policy"] = {"train": _summary(info), "eval": evaluate(str(one), tasks, args.episodes, reality=not args.one)}
    print(json.dumps(result["one_policy"]["eval"], indent=1))
    if args.per_task:
        result["per_task"] = {}
        for task in tasks:
            sep = Path(args.out) / f"{task}-{args.arch}"
            info = train(args.dataset, sep, cfg, tasks=[task]) if not args.skip_train else json.loads((sep / "train.json").read_text())
            ev = evaluate(str(sep), [task], args.episodes, reality=False)[task]
            result["per_task"][task] = {"train": _summary(info), "nominal_success": ev["nominal_success"]}
            gap = result["one_policy"]["eval"][task]["nominal_success"] - ev["nominal_success"]
            result["per_task"][task]["one_minus_separate"] = round(gap, 3)
            print(task, "separate", ev["nominal_success"], "one - separate", round(gap, 3))
    result["seconds"] = round(time.time() - t0, 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
