"""Watch: keypoint error (MPJPE), replay success of watched demos per task, and speed.

    python benchmarks/watch_bench.py --episodes 10        # per task; renders what is missing first
    python benchmarks/watch_bench.py --episodes 10 --per-recording 5 --first-seed 5000 \
        --first-person 1000 --videos academy-data/bench/human-heldout --out benchmarks/results/watch_heldout.json

Recordings are rendered once into --videos (reused when present); the watch pipeline then runs
on them from scratch. Writes benchmarks/results/watch.json. The replay was developed on the
recordings of scene seeds 1000.. (people 0.., 100.., 200..); the held-out figures are those of
seeds 5000.. filmed with people 1000.., 1100.., 1200.., never looked at while developing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from academy.human.record import record_many  # noqa: E402
from academy.sim.tasks import parse_task_knobs  # noqa: E402
from academy.watch.pipeline import watch  # noqa: E402

TASKS = ("sort_cells", "place_part", "handover")


def _stale(folder: Path, difficulty: dict) -> bool:
    """Whether a cached recording was filmed at another difficulty, predates starting positions in
    scene.json (so its scene cannot be checked), or lists a scene that its seed no longer draws."""
    from academy.sim.env import WorkcellEnv
    from academy.watch.pipeline import scene_mismatch

    for p in folder.glob("*/scene.json"):
        scene = json.loads(p.read_text())
        if (scene.get("difficulty") or {}) != difficulty:
            return True
        env = WorkcellEnv(scene["task"], scene.get("difficulty") or None)
        if any("objects" not in ep or scene_mismatch(env, ep) for ep in scene["episodes"]):
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=10, help="episodes per task")
    ap.add_argument("--per-recording", type=int, default=5)
    ap.add_argument("--videos", default="academy-data/bench/human")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=1000, help="scene seed of the first episode rendered")
    ap.add_argument("--first-person", type=int, default=0, help="person seed of the first task's first recording")
    ap.add_argument("--out", default="benchmarks/results/watch.json")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--difficulty", action="append", default=[], metavar="TASK.KNOB=VALUE",
                    help="film a task at this difficulty (repeatable), e.g. sort_cells.n_cells=1")
    args = ap.parse_args()
    difficulty = parse_task_knobs(args.difficulty)
    results = {"episodes_per_task": args.episodes, "difficulty": difficulty, "tasks": {}}
    for i, task in enumerate(TASKS):
        if task not in args.tasks:
            continue
        folder = Path(args.videos) / task
        t0 = time.time()
        if (not folder.exists() or len(list(folder.glob("*/calibration.json"))) * args.per_recording < args.episodes
                or _stale(folder, difficulty.get(task, {}))):
            shutil.rmtree(folder, ignore_errors=True)
            record_many(folder, task, args.episodes, first_seed=args.first_seed, per_recording=args.per_recording,
                        first_person=args.first_person + 100 * i, difficulty=difficulty.get(task), workers=args.workers)
        render_s = time.time() - t0
        ds = Path(args.videos) / f"watched-{task}"
        shutil.rmtree(ds, ignore_errors=True)
        report = watch(folder, ds)
        outcomes = [e.outcome for e in report.episodes]
        errs = list(report.keypoint_error_mm.values())
        results["tasks"][task] = {
            "episodes_listed": args.episodes,
            "replay_success": outcomes.count("success") / args.episodes,
            "outcomes": {o: outcomes.count(o) for o in set(outcomes)},
            "skipped_reasons": sorted({e.reason for e in report.episodes if e.outcome != "success"}),
            "recordings_skipped": report.recordings_skipped,
            "mpjpe_mm_median": float(np.median([e["median"] for e in errs])) if errs else None,
            "mpjpe_mm_p90": float(np.median([e["p90"] for e in errs])) if errs else None,
            "keypoint_coverage": float(np.mean([e["coverage"] for e in errs])) if errs else None,
            "video_seconds": report.video_seconds, "watch_wall_seconds": report.wall_seconds,
            "video_seconds_per_wall_second": report.video_seconds / max(report.wall_seconds, 1e-9),
            "render_wall_seconds": render_s,
            "not_replayed": [{"recording": e.recording, "seed": e.seed, "outcome": e.outcome, "reason": e.reason}
                             for e in report.episodes if e.outcome != "success"],
            "keypoint_error_mm_per_recording": report.keypoint_error_mm,
        }
        print(task, json.dumps(results["tasks"][task], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
