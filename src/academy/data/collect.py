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
from academy.sim.randomize import CONTEXT_TERMS
from academy.sim.rollout_expert import EpisodeResult, run_expert
from academy.sim.tasks import GOAL_DIM, make_task
from academy.sim.world import OBJECTS

FPS = int(round(1 / CONTROL_DT))
STATE_KEY, ENV_KEY, GOAL_KEY, ACTION_KEY = (
    "observation.state", "observation.environment_state", "observation.goal", "action",
)
CONTEXT_KEY = "observation.context"  # the episode's physical context (scale factors), for world models
# the command the robot was sent, noise included (``action`` is the agent's own, the label a learner
# imitates); a world model learns how the world answers what was executed. Recorded with the context.
EXECUTED_KEY = "action.executed"


def workcell_features(cameras: Iterable[str] = (), image_size: tuple[int, int] = (120, 160),
                      context: bool = False) -> dict:
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
    if context:
        feats[CONTEXT_KEY] = {"dtype": "float32", "shape": [len(CONTEXT_TERMS)], "names": list(CONTEXT_TERMS)}
        feats[EXECUTED_KEY] = {"dtype": "float32", "shape": [robot.N_ACTUATORS], "names": list(robot.JOINTS)}
    for cam in cameras:
        feats[f"observation.images.{cam}"] = {
            "dtype": "video", "shape": [*image_size, 3], "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                     "video.is_depth_map": False, "video.height": image_size[0], "video.width": image_size[1],
                     "video.channels": 3, "has_audio": False},
        }
    return feats


def obs_to_features(observations: list[dict], context: bool = False) -> dict[str, np.ndarray]:
    """Stack a list of env observations into the dataset's observation columns (with the physical
    context if ``context``)."""
    out = {
        STATE_KEY: np.stack([o["proprio"] for o in observations]),
        ENV_KEY: np.stack([np.asarray(o["objects"]).reshape(-1) for o in observations]),
        GOAL_KEY: np.stack([o["goal"] for o in observations]),
    }
    if context:
        out[CONTEXT_KEY] = np.stack([o["context"] for o in observations]).astype(np.float32)
    return out


def steps_to_frames(observations: list[dict], actions: list, rewards: list, context: bool = False,
                    executed: list | None = None) -> dict[str, np.ndarray]:
    """An episode's observations, actions and rewards as the dataset's columns (done on the last step);
    with ``context``, also the physics and the executed commands (``executed``, else the actions)."""
    T = len(actions)
    out = {
        **obs_to_features(observations, context),
        ACTION_KEY: np.stack(actions).astype(np.float32),
        "next.reward": np.asarray(rewards, np.float32),
        "next.done": np.arange(T) == T - 1,
    }
    if context:
        out[EXECUTED_KEY] = np.stack(executed if executed else actions).astype(np.float32)
    return out


def episode_frames(result: EpisodeResult, context: bool = False) -> dict[str, np.ndarray]:
    return steps_to_frames(result.observations, result.actions, result.rewards, context, result.executed)


def _collect_job(args: tuple) -> list[tuple[dict, bool, int]]:
    task, seeds, difficulty, serial, noise, randomization, context_ranges, policy = args
    agent = None
    if policy is not None:
        import torch

        from academy.learn.policy import Policy, PolicyAgent

        torch.set_num_threads(1)  # one per worker process: more only fight over the cores

        agent = PolicyAgent(Policy.load(policy))
    out = []
    for r in run_expert(task, seeds, difficulty, serial, record=True, action_noise=noise, randomization=randomization,
                        context_ranges=context_ranges, agent=agent):
        out.append((episode_frames(r, context_ranges is not None), r.success, r.seed))
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
    context_ranges: dict[str, tuple[float, float]] | None = None,
    policy: str | Path | None = None,
) -> Dataset:
    """Record ``episodes`` expert episodes of ``task`` (seeds first_seed..) into ``out``.

    Appends when ``out`` already holds a dataset. Failed episodes are kept with outcome
    "failure"; learners filter on the outcome. ``action_noise`` perturbs the executed actions
    (the recorded ones stay the expert's), so the demonstrations visit states off the expert's
    own path and show the way back (DART, Laskey et al. 2017). ``randomization`` (a
    ``RandomizationConfig``) randomizes each episode's world, e.g. encoder offsets.
    ``context_ranges`` (term -> (low, high) of ``randomize.CONTEXT_TERMS``) draws each episode's
    physical context and records it as ``observation.context``; a dataset either has that column
    or not, so appending must match how it was created. ``policy`` (a checkpoint folder) records
    that policy's episodes instead of the expert's, successes and failures, as source "practice":
    the on-policy data a world model needs to learn what failure looks like.
    """
    out = Path(out)
    with_context = context_ranges is not None
    if (out / "meta/info.json").exists():
        ds = Dataset(out)
        if with_context and CONTEXT_KEY in ds.features and EXECUTED_KEY not in ds.features:
            raise ValueError(f"{out} records the context but not the executed commands ({EXECUTED_KEY}, since "
                             f"2026-11-24): collect into a new dataset")
        if (CONTEXT_KEY in ds.features) != with_context:
            have = "records" if CONTEXT_KEY in ds.features else "does not record"
            raise ValueError(f"{out} {have} the physical context ({CONTEXT_KEY}); append with"
                             f"{'' if CONTEXT_KEY in ds.features else 'out'} context ranges, or use a new dataset")
    else:
        ds = Dataset.create(out, FPS, workcell_features(context=with_context))
    sentence = make_task(task).description
    workers = workers or min(4, os.cpu_count() or 1)
    seeds = list(range(first_seed, first_seed + episodes))
    batches = [seeds[i : i + 5] for i in range(0, len(seeds), 5)]
    with ds.writer(flush_every=25) as writer, ProcessPoolExecutor(workers) as pool:
        for batch in pool.map(_collect_job, [(task, b, difficulty, serial, action_noise, randomization, context_ranges,
                                           policy) for b in batches]):
            for frames, success, seed in batch:
                meta = EpisodeMeta(task=task, source="expert" if policy is None else "practice", robot_serial=serial or "sim",
                                   outcome="success" if success else "failure", seed=seed)
                writer.add_episode(frames, meta, sentence)
                if on_episode:
                    on_episode(seed, success)
    return Dataset(out)
