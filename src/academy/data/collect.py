"""Record workcell episodes (expert, or any agent) into a dataset.

The features follow LeRobot's naming: ``observation.state`` (joint positions and velocities),
``observation.environment_state`` (object poses), ``action`` (joint targets), and Academy's
``observation.goal`` (the task's goal vector). Camera streams are ``observation.images.<camera>``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from academy.data.store import Dataset, EpisodeMeta
from academy.sim import robot
from academy.sim.env import CONTROL_DT
from academy.sim.rollout_expert import EpisodeResult, run_expert
from academy.sim.tasks import GOAL_DIM, make_task
from academy.sim.world import OBJECTS

FPS = int(round(1 / CONTROL_DT))
STATE_KEY, ENV_KEY, GOAL_KEY, ACTION_KEY = (
    "observation.state", "observation.environment_state", "observation.goal", "action",
)


def workcell_features(cameras: Iterable[str] = (), image_size: tuple[int, int] = (120, 160)) -> dict:
    pose = ("x", "y", "z", "qw", "qx", "qy", "qz")
    feats = {
        STATE_KEY: {"dtype": "float32", "shape": [2 * robot.N_ACTUATORS],
                    "names": [f"{j}.pos" for j in robot.JOINTS] + [f"{j}.vel" for j in robot.JOINTS]},
        ENV_KEY: {"dtype": "float32", "shape": [7 * len(OBJECTS)], "names": [f"{o}.{p}" for o in OBJECTS for p in pose]},
        GOAL_KEY: {"dtype": "float32", "shape": [GOAL_DIM], "names": [f"goal_{i}" for i in range(GOAL_DIM)]},
        ACTION_KEY: {"dtype": "float32", "shape": [robot.N_ACTUATORS], "names": list(robot.JOINTS)},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
    }
    for cam in cameras:
        feats[f"observation.images.{cam}"] = {
            "dtype": "video", "shape": [*image_size, 3], "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                     "video.is_depth_map": False, "video.height": image_size[0], "video.width": image_size[1],
                     "video.channels": 3, "has_audio": False},
        }
    return feats


def obs_to_features(observations: list[dict]) -> dict[str, np.ndarray]:
    """Stack a list of env observations into the dataset's observation columns."""
    return {
        STATE_KEY: np.stack([o["proprio"] for o in observations]),
        ENV_KEY: np.stack([np.asarray(o["objects"]).reshape(-1) for o in observations]),
        GOAL_KEY: np.stack([o["goal"] for o in observations]),
    }


def episode_frames(result: EpisodeResult) -> dict[str, np.ndarray]:
    T = result.steps
    return {
        **obs_to_features(result.observations),
        ACTION_KEY: np.stack(result.actions),
        "next.reward": np.asarray(result.rewards, np.float32),
        "next.done": np.arange(T) == T - 1,
    }


def _collect_job(args: tuple) -> list[tuple[dict, bool, int]]:
    task, seeds, difficulty, serial, noise, randomization = args
    out = []
    for r in run_expert(task, seeds, difficulty, serial, record=True, action_noise=noise, randomization=randomization):
        out.append((episode_frames(r), r.success, r.seed))
    return out


def collect(
    task: str,
    episodes: int,
    out: str | Path,
    first_seed: int = 0,
    difficulty: dict[str, Any] | None = None,
    serial: str | None = None,
    workers: int | None = None,
    on_episode: Callable[[int, bool], None] | None = None,
    action_noise: float = 0.0,
    randomization=None,
) -> Dataset:
    """Record ``episodes`` expert episodes of ``task`` (seeds first_seed..) into ``out``.

    Appends when ``out`` already holds a dataset. Failed episodes are kept with outcome
    "failure"; learners filter on the outcome. ``action_noise`` perturbs the executed actions
    (the recorded ones stay the expert's), so the demonstrations visit states off the expert's
    own path and show the way back (DART, Laskey et al. 2017). ``randomization`` (a
    ``RandomizationConfig``) randomizes each episode's world, e.g. encoder offsets.
    """
    out = Path(out)
    ds = Dataset(out) if (out / "meta/info.json").exists() else Dataset.create(out, FPS, workcell_features())
    sentence = make_task(task).description
    workers = workers or min(4, os.cpu_count() or 1)
    seeds = list(range(first_seed, first_seed + episodes))
    batches = [seeds[i : i + 5] for i in range(0, len(seeds), 5)]
    with ds.writer(flush_every=25) as writer, ProcessPoolExecutor(workers) as pool:
        for batch in pool.map(_collect_job, [(task, b, difficulty, serial, action_noise, randomization) for b in batches]):
            for frames, success, seed in batch:
                meta = EpisodeMeta(task=task, source="expert", robot_serial=serial or "sim",
                                   outcome="success" if success else "failure", seed=seed)
                writer.add_episode(frames, meta, sentence)
                if on_episode:
                    on_episode(seed, success)
    return Dataset(out)
