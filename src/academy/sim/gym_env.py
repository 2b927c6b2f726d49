"""Gymnasium face of the workcell: registered ids ``academy/SortCells-v0`` and friends."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from academy.sim.env import N_PROPRIO, WorkcellEnv
from academy.sim.randomize import CONTEXT_TERMS
from academy.sim.tasks import GOAL_DIM, REGISTRY
from academy.sim.world import OBJECTS

GYM_IDS = {
    "sort_cells": "academy/SortCells-v0",
    "place_part": "academy/PlacePart-v0",
    "handover": "academy/Handover-v0",
}


class WorkcellGymEnv(gym.Env):
    """A ``WorkcellEnv`` behind Gymnasium's API; keyword arguments go to ``WorkcellEnv``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "sort_cells", render_mode: str | None = None, **kwargs: Any):
        self.env = WorkcellEnv(task, **kwargs)
        self.render_mode = render_mode
        lo, hi = self.env.world.ctrl_range.T
        self.action_space = spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {
            "proprio": spaces.Box(-np.inf, np.inf, (N_PROPRIO,), np.float32),
            "objects": spaces.Box(-np.inf, np.inf, (len(OBJECTS), 7), np.float32),
            "goal": spaces.Box(-np.inf, np.inf, (GOAL_DIM,), np.float32),
            "task": spaces.Discrete(len(REGISTRY)),
            "context": spaces.Box(0.0, np.inf, (len(CONTEXT_TERMS),), np.float32),
        }
        if self.env.cameras:
            h, w = self.env.image_size
            obs_spaces["images"] = spaces.Dict(
                {c: spaces.Box(0, 255, (h, w, 3), np.uint8) for c in self.env.cameras}
            )
        self.observation_space = spaces.Dict(obs_spaces)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:  # draw from Gymnasium's generator so unseeded resets still vary
            seed = int(self.np_random.integers(2**31))
        return self.env.reset(seed)

    def step(self, action):
        return self.env.step(action)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.env.render("overview")
        return None

    def close(self):
        self.env.close()


def register_envs() -> None:
    for task, gym_id in GYM_IDS.items():
        if gym_id not in gym.registry:
            gym.register(
                id=gym_id,
                entry_point="academy.sim.gym_env:WorkcellGymEnv",
                kwargs={"task": task},
                max_episode_steps=None,
            )

