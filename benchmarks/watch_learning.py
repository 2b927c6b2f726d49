"""Learning from watching alone: the one network trained only on watched demos, against the same
network trained on as many expert demos of the same scenes, per task (goal: at least 80%).

    python benchmarks/watch_learning.py \\
        --watched academy-data/bench/human-heldout/watched-sort_cells \\
        --watched academy-data/bench/human-heldout/watched-place_part \\
        --watched academy-data/bench/human-heldout/watched-handover --steps 6000 --episodes 50

The watched datasets are what `academy watch` (or benchmarks/watch_bench.py) wrote: the demos
whose replay succeeded. For every one of them the scripted expert records the same scene (its
seed); both sets train the same network with the same step budget and seed, and both policies
are evaluated on the same held-out seeds in the nominal simulation. Footage filmed at another
difficulty than the task's default (`watch_bench.py --difficulty sort_cells.n_cells=1`) is
learned and evaluated at that difficulty: give it here too, the same way; a watched scene the
expert's recording of its seed does not start alike (another difficulty) stops the benchmark.
Writes benchmarks/results/watch_learning.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from academy.data import Dataset
from academy.data.collect import collect
from academy.data.store import merge
from academy.evaluate import evaluate
from academy.flywheel.cycle import wilson
from academy.learn.train import TrainConfig, train
from academy.sim.tasks import parse_task_knobs

SCENE_TOLERANCE = 1e-3  # m: a watched demo and the expert's of its seed start with their objects this close


def check_same_scenes(watched: Dataset, expert: Dataset) -> None:
    """Stop unless every watched demo starts its objects where the expert's demo of the same seed does."""
    key = "observation.environment_state"
    w_eps, e_eps = watched.episodes, expert.episodes
    of_seed = {(t, int(s)): int(i) for t, s, i in zip(e_eps["academy/task"], e_eps["academy/seed"], e_eps["episode_index"])}
    for t, s, i in zip(w_eps["academy/task"], w_eps["academy/seed"], w_eps["episode_index"]):
        if (t, int(s)) not in of_seed:
            continue
        a = watched.read([key], [int(i)])[key][0]
        b = expert.read([key], [of_seed[t, int(s)]])[key][0]
        if np.abs(a - b).max() > SCENE_TOLERANCE:
            raise SystemExit(f"watched {t} scene {s} does not start as the expert's recording of seed {s} does "
                             f"(objects up to {1000 * np.abs(a - b).max():.0f} mm apart): was it filmed at "
                             "another difficulty? Pass the same --difficulty TASK.KNOB=VALUE as when filming")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--watched", action="append", required=True, help="a watched dataset (repeat)")
    ap.add_argument("--work", default="academy-data/bench/watch-learning")
    ap.add_argument("--steps", type=int, default=6000, help="training steps, the same for both")
    ap.add_argument("--episodes", type=int, default=50, help="held-out evaluation episodes per task")
    ap.add_argument("--out", default="benchmarks/results/watch_learning.json")
    ap.add_argument("--difficulty", action="append", default=[], metavar="TASK.KNOB=VALUE",
                    help="the difficulty the footage was filmed at (repeatable), e.g. sort_cells.n_cells=1")
    args = ap.parse_args()
    difficulty = parse_task_knobs(args.difficulty)
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
        collect(task, 1, work / "expert", first_seed=seed, difficulty=difficulty.get(task), workers=1)
    expert = Dataset(work / "expert")
    check_same_scenes(watched, expert)
    expert_ok = {t: len(expert.select(task=t, outcome="success")) for t in tasks}
    print("expert demos of the same scenes that succeeded:", expert_ok)

    results = {"steps": args.steps, "episodes": args.episodes, "difficulty": difficulty, "tasks": {},
               "watched_datasets": args.watched}
    policies = {}
    for name in ("watched", "expert"):
        cfg = TrainConfig(max_steps=args.steps, max_minutes=1e6, seed=0)
        info = train(work / name, work / f"policy-{name}", cfg, tasks=tasks)
        policies[name] = {task: evaluate(str(work / f"policy-{name}"), [task], episodes=args.episodes, reality=False,
                                         difficulty=difficulty.get(task))[task] for task in tasks}
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
