"""Run an agent (a scripted expert or a learned policy) for seeded episodes.

An agent has ``reset(obs)`` and ``act(obs) -> action``. ``rollout`` runs one episode and can
record what a dataset needs (observations, actions, rewards) and overview frames for a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from academy.sim import robot
from academy.sim.env import CONTROL_DT, WorkcellEnv
from academy.sim.experts import make_expert
from academy.sim.reality import RealityRobot


ARM = [robot.JOINTS.index(j) for side in robot.SIDES for j in robot.arm_joints(side)]


class Agent(Protocol):
    def reset(self, obs: dict) -> None: ...

    def act(self, obs: dict) -> np.ndarray: ...


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    seconds: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    observations: list[dict] = field(default_factory=list, repr=False)  # the obs each action answered
    actions: list[np.ndarray] = field(default_factory=list, repr=False)
    executed: list[np.ndarray] = field(default_factory=list, repr=False)  # what the robot was sent (with the noise)
    rewards: list[float] = field(default_factory=list, repr=False)


def rollout(env, agent: Agent, seed: int, record: bool = False, video: bool = False,
            frame_size: tuple[int, int] = (240, 320), camera: str = "overview",
            action_noise: float = 0.0) -> EpisodeResult:
    """One episode. ``action_noise`` (rad, std) perturbs the executed arm-joint targets while the
    recorded actions stay the agent's: demonstrations that show how to recover (DART)."""
    obs, _ = env.reset(seed)
    noise_rng = np.random.default_rng([seed, 7919])
    agent.reset(obs)
    result = EpisodeResult(seed, False, 0, 0.0)
    if video:
        result.frames.append(env.render(camera, frame_size))
    while True:
        action = agent.act(obs)
        if record:
            result.observations.append(obs)
            result.actions.append(np.asarray(action, np.float32))
        if action_noise:
            action = np.array(action, float)
            action[ARM] += noise_rng.normal(0.0, action_noise, len(ARM))
        if record:
            result.executed.append(np.asarray(action, np.float32))
        obs, reward, terminated, truncated, info = env.step(action)
        result.steps += 1
        if record:
            result.rewards.append(float(reward))
        if video:
            result.frames.append(env.render(camera, frame_size))
        if terminated or truncated:
            result.success = bool(info["success"])
            break
    result.seconds = result.steps * CONTROL_DT
    return result


def make_env(task: str, difficulty: dict[str, Any] | None = None, serial: str | None = None, **kw):
    """The nominal simulation, or ``RealityRobot(serial)`` if a serial is given."""
    return RealityRobot(serial, task, difficulty, **kw) if serial else WorkcellEnv(task, difficulty, **kw)


def run_expert(
    task: str,
    seeds: list[int],
    difficulty: dict[str, Any] | None = None,
    serial: str | None = None,
    video_seeds: tuple[int, ...] = (),
    frame_size: tuple[int, int] = (240, 320),
    on_episode: Callable[[EpisodeResult], None] | None = None,
    record: bool = False,
    action_noise: float = 0.0,
    randomization=None,
    context_ranges: dict[str, tuple[float, float]] | None = None,
    agent: Agent | None = None,
) -> list[EpisodeResult]:
    """Expert episodes for ``seeds`` (or ``agent``'s, if one is given); on ``RealityRobot(serial)`` if
    a serial is given, else in the nominal simulation or one randomized by ``randomization`` per episode."""
    if serial and randomization is not None:
        raise ValueError("a reality robot's physics is its own: randomization applies to the simulation only")
    if serial and context_ranges:
        raise ValueError("a reality robot's physics is its own: a context applies to the simulation only")
    extra = {"randomization": randomization} if randomization else {}
    if context_ranges:
        extra["context_ranges"] = context_ranges
    env = make_env(task, difficulty, serial, **extra)
    expert = agent if agent is not None else make_expert(task)
    results = []
    for seed in seeds:
        result = rollout(env, expert, seed, record=record, video=seed in video_seeds, frame_size=frame_size,
                         action_noise=action_noise)
        results.append(result)
        if on_episode:
            on_episode(result)
    env.close()
    return results
