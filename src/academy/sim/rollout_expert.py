"""Run a task's scripted expert for seeded episodes, in simulation or on a reality robot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from academy.sim.env import WorkcellEnv
from academy.sim.experts import make_expert
from academy.sim.reality import RealityRobot


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    seconds: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


def run_expert(
    task: str,
    seeds: list[int],
    difficulty: dict[str, Any] | None = None,
    serial: str | None = None,
    video_seeds: tuple[int, ...] = (),
    frame_size: tuple[int, int] = (240, 320),
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Expert episodes for ``seeds``; on ``RealityRobot(serial)`` if a serial is given."""
    env = RealityRobot(serial, task, difficulty) if serial else WorkcellEnv(task, difficulty)
    expert = make_expert(task)
    results = []
    for seed in seeds:
        obs, _ = env.reset(seed)
        expert.reset(obs)
        keep = seed in video_seeds
        frames = [env.render("overview", frame_size)] if keep else []
        steps, success = 0, False
        while True:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            steps += 1
            if keep:
                frames.append(env.render("overview", frame_size))
            if terminated or truncated:
                success = bool(info["success"])
                break
        result = EpisodeResult(seed, success, steps, steps * 0.05, frames)
        results.append(result)
        if on_episode:
            on_episode(result)
    env.close()
    return results
