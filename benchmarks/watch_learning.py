"""Learning from watching alone: the one network trained only on watched demos, against the same
network trained on as many expert demos of the same scenes, per task (goal: at least 80%).

    python benchmarks/watch_learning.py \\
        --watched academy-data/bench/human-heldout/watched-sort_cells \\
        --watched academy-data/bench/human-heldout/watched-place_part \\
        --watched academy-data/bench/human-heldout/watched-handover --steps 6000 --episodes 50

The watched datasets are what `academy watch` (or benchmarks/watch_bench.py) wrote: the demos
whose replay succeeded. For every one of them the scripted expert records the same scene (its
seed); both sets train the same network with the same step budget and seed, and both policies
are evaluated on the same held-out seeds in the nominal simulation. Writes
benchmarks/results/watch_learning.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from academy.data import Dataset
from academy.data.collect import collect
from academy.data.store import merge
from academy.evaluate import evaluate
from academy.flywheel.cycle import wilson
from academy.learn.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--watched", action="append", required=True, help="a watched dataset (repeat)")
    ap.add_argument("--work", default="academy-data/bench/watch-learning")
    ap.add_argument("--steps", type=int, default=6000, help="training steps, the same for both")
    ap.add_argument("--episodes", type=int, default=50, help="held-out evaluation episodes per task")
    ap.add_argument("--out", default="benchmarks/results/watch_learning.json")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()

    watched = merge(args.watched, work / "watched")
    eps = watched.episodes
    chosen = eps[eps["academy/outcome"] == "success"]
    scenes = [(str(t), int(s)) for t, s in zip(chosen["academy/task"], chosen["academy/seed"])]
    tasks = sorted({t for t, _ in scenes})
    print(f"{len(scenes)} watched demos: " + ", ".join(f"{t} {sum(1 for x, _ in scenes if x == t)}" for t in tasks))

    for task, seed in scenes:  # the expert on the very same scenes
        collect(task, 1, work / "expert", first_seed=seed, workers=1)
    expert = Dataset(work / "expert")
    expert_ok = {t: len(expert.select(task=t, outcome="success")) for t in tasks}
    print("expert demos of the same scenes that succeeded:", expert_ok)

    results = {"steps": args.steps, "episodes": args.episodes, "tasks": {}, "watched_datasets": args.watched}
    policies = {}
    for name in ("watched", "expert"):
        cfg = TrainConfig(max_steps=args.steps, max_minutes=1e6, seed=0)
        info = train(work / name, work / f"policy-{name}", cfg, tasks=tasks)
        policies[name] = evaluate(str(work / f"policy-{name}"), tasks, episodes=args.episodes, reality=False)
        results[f"{name}_train"] = {k: info[k] for k in ("episodes", "frames", "steps", "seconds", "final_loss", "val_loss")}
    for task in tasks:
        w, e = policies["watched"][task]["nominal_success"], policies["expert"][task]["nominal_success"]
        results["tasks"][task] = {
            "demos_watched": sum(1 for t, _ in scenes if t == task), "demos_expert": expert_ok[task],
            "success_watched": w, "success_expert": e, "ratio": (w / e) if e > 0 else None,
            **{f"wilson95_{name}": wilson(round(p[task]["nominal_success"] * p[task]["nominal_episodes"]),
                                          p[task]["nominal_episodes"]) for name, p in policies.items()}}
        print(task, json.dumps(results["tasks"][task]))
    results["wall_seconds"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
