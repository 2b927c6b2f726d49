"""The fleet's episodes made into training data: failures first, and weighing more.

A failed episode shows what went wrong, not what to do; imitation cannot learn from it as it is.
So each failure is redone: the scripted expert, standing in for a person who takes over by
teleoperation, does the same order (task and scene seed) on the same robot (its serial: the
same hidden physics, calibration offsets and backlash). What the expert does there is recorded
as a correction (source ``correction``), keyed by the failed episode's key so that no failure is
corrected twice. The learner then draws corrections more often (``TrainConfig.source_weights``,
``academy learn --weight correction=3``).

Successful fleet episodes are kept as they are (source ``fleet``): the policy's own successes on
the robots it will run on, under their physics.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from academy.data import Dataset
from academy.data.store import EpisodeMeta

SPAWN = multiprocessing.get_context("spawn")  # the caller may hold torch threads: fork could hang
DEFAULT_NOISE = 0.005  # the DART noise of the demos the policies learn from (docs/learn.md)


def _redo_job(args: tuple) -> list[tuple]:
    from academy.data.collect import episode_frames
    from academy.sim.rollout_expert import run_expert

    task, serial, items, noise = args
    results = run_expert(task, [seed for seed, _ in items], serial=serial, record=True, action_noise=noise)
    return [(episode_frames(r), bool(r.success), r.seed, key) for r, (_, key) in zip(results, items)]


def corrections(fleet: str | Path, out: str | Path, workers: int = 2, noise: float = DEFAULT_NOISE,
                on_episode: Callable[[bool], None] | None = None) -> dict:
    """Redo every failed episode of the ``fleet`` dataset not yet redone into ``out``; returns counts."""
    from academy.data.collect import FPS, workcell_features
    from academy.sim.tasks import make_task

    src = Dataset(fleet)
    out = Path(out)
    ds = Dataset(out) if (out / "meta/info.json").exists() else Dataset.create(out, FPS, workcell_features())
    done = set(ds.episodes["academy/key"]) if "academy/key" in ds.episodes.columns else set()
    eps = src.episodes
    failed = eps[(eps["academy/outcome"] == "failure") & ~eps["academy/key"].isin(done)]
    jobs: dict[tuple[str, str], list] = {}
    for _, ep in failed.iterrows():
        jobs.setdefault((ep["academy/task"], ep["academy/robot_serial"]), []).append((int(ep["academy/seed"]), ep["academy/key"]))
    batches = [(task, serial, items[i:i + 4], noise) for (task, serial), items in jobs.items()
               for i in range(0, len(items), 4)]
    redone = succeeded = 0
    with ds.writer(flush_every=25) as writer, ProcessPoolExecutor(workers, mp_context=SPAWN) as pool:
        for (task, serial, _, _), results in zip(batches, pool.map(_redo_job, batches)):
            for frames, success, seed, key in results:
                writer.add_episode(frames, EpisodeMeta(task=task, source="correction", robot_serial=serial,
                                                       outcome="success" if success else "failure", seed=seed, key=key),
                                   make_task(task).description)
                redone += 1
                succeeded += success
                if on_episode:
                    on_episode(success)
    return {"failures": int((eps["academy/outcome"] == "failure").sum()), "redone": redone,
            "corrections_succeeded": succeeded, "already_redone": len(done), "dataset": str(out)}
