"""Watch's replay with perception taken out: people's motion replayed from their ground-truth
keypoints (every marker seen exactly), against the scripted expert on the very same scenes.

    python benchmarks/watch_truth.py --episodes 30

For each task, ``--episodes`` episodes (scene seeds ``--first-seed``..) performed by a new person
every 5 episodes (person seeds ``--first-person``..) are generated without rendering (ground truth
only: seconds, not the half hour the footage takes), then run through ``academy.watch.watch`` with
``truth_keypoints`` in place of the videos: segmentation, hand tracks, grasps, retargeting and the
replay in physics are all the pipeline's own. What this replay fails, the pipeline fails however
good the keypoints. The baseline in the same run is the scripted expert on the same scenes
(replay / expert as a ratio). Writes benchmarks/results/watch_truth.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from academy.human.record import record_many
from academy.sim.rollout_expert import make_env, rollout
from academy.sim.experts import make_expert
from academy.watch.keypoints import truth_keypoints
from academy.watch.pipeline import watch

TASKS = ("sort_cells", "place_part", "handover")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=30, help="episodes per task")
    ap.add_argument("--first-seed", type=int, default=7000, help="scene seed of each task's first episode")
    ap.add_argument("--first-person", type=int, default=3000, help="person seed of each task's first recording")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--work", default="academy-data/bench/watch-truth")
    ap.add_argument("--out", default="benchmarks/results/watch_truth.json")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results = {"episodes_per_task": args.episodes, "first_seed": args.first_seed, "first_person": args.first_person,
               "tasks": {}}
    for i, task in enumerate(args.tasks):
        t0 = time.time()
        record_many(work / task, task, args.episodes, args.first_seed, 5, args.first_person + 100 * i, render=False)
        report = watch(work / task, work / f"replayed-{task}", keypoints_of=truth_keypoints)
        ok = [e for e in report.episodes if e.outcome == "success"]
        env, expert = make_env(task, None, None), make_expert(task)
        seeds = [e.seed for e in report.episodes]
        expert_ok = sum(rollout(env, expert, s).success for s in seeds)
        results["tasks"][task] = {
            "episodes": len(report.episodes), "replay_success": len(ok) / max(len(report.episodes), 1),
            "expert_success": expert_ok / max(len(seeds), 1),
            "ratio": (len(ok) / expert_ok) if expert_ok else None,
            "recordings_skipped": report.recordings_skipped,
            "failures": [{"seed": e.seed, "outcome": e.outcome, "reason": e.reason}
                         for e in report.episodes if e.outcome != "success"],
            "seconds": time.time() - t0}
        print(task, json.dumps(results["tasks"][task]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
