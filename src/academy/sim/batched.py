"""Many workcell scenes stepped at once: the physics of all of them in one ``mujoco.rollout`` call.

Each scene is a full ``WorkcellEnv`` (its own model, so randomization differs per scene); only
the 25 physics substeps of a control step are batched, run on MuJoCo's thread pool. Commands,
observations, rewards and resets go through each env's own code, so the batched and the single
env are one code path.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import mujoco
import numpy as np
from mujoco import rollout

from academy.sim.env import WorkcellEnv
from academy.sim.randomize import RandomizationConfig

STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


class BatchedWorkcellEnv:
    """``n`` scenes; ``step(actions)`` takes (n, 28) and returns stacked results.

    ``task`` names one task for every scene or one per scene (all tasks share the workcell's
    model, so their physics batches together). Scenes that finish are reset at once (seeds
    ``seed + n * episode_count + i``), and the observation returned for them is the first of
    their new episode; ``info["final_success"]`` keeps what happened and ``info["reset"]`` says
    which scenes started anew. ``on_reset(i, env)``, if given, runs before every reset of scene
    ``i`` (to change its task, difficulty or randomization: a curriculum's hook).
    """

    def __init__(
        self,
        task: str | Sequence[str] = "sort_cells",
        n: int = 8,
        difficulty: dict[str, Any] | None = None,
        randomization: RandomizationConfig | None = None,
        nthread: int | None = None,
        on_reset: Callable[[int, WorkcellEnv], None] | None = None,
    ):
        tasks = [task] * n if isinstance(task, str) else list(task)
        if len(tasks) != n:
            raise ValueError(f"{len(tasks)} tasks given for {n} scenes")
        if n < 1:
            raise ValueError(f"a batched env needs at least one scene, got n={n}")
        self.envs = [WorkcellEnv(t, difficulty, randomization) for t in tasks]
        self.on_reset = on_reset
        self.n = n
        self.nthread = nthread or min(n, os.cpu_count() or 1)
        self._thread_data = [mujoco.MjData(self.envs[0].model) for _ in range(self.nthread)]
        self._episodes = np.zeros(n, dtype=int)
        self._seed = 0

    def reset(self, seed: int = 0, seeds: Sequence[int] | None = None) -> dict:
        """Start every scene: scene i with ``seeds[i]`` if given, else ``seed + i``."""
        if seeds is not None and len(seeds) != self.n:
            raise ValueError(f"{len(seeds)} seeds given for {self.n} scenes")
        self._seed = seed
        self._episodes[:] = 0
        return self._stack([self._reset(i, seed + i if seeds is None else int(seeds[i])) for i in range(self.n)])

    def _reset(self, i: int, seed: int) -> dict:
        if self.on_reset is not None:
            self.on_reset(i, self.envs[i])
        return self.envs[i].reset(seed)[0]

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)
        if actions.shape != (self.n, 28):
            raise ValueError(f"actions must have shape ({self.n}, 28), got {actions.shape}")
        for env, a in zip(self.envs, actions):
            env.apply_action(a)
        self.physics()
        obs, rew, term, trunc, success = [], np.zeros(self.n), np.zeros(self.n, bool), np.zeros(self.n, bool), np.zeros(self.n, bool)
        for i, env in enumerate(self.envs):
            o, rew[i], term[i], trunc[i], info = env.after_physics()
            success[i] = info["success"]
            if term[i] or trunc[i]:
                self._episodes[i] += 1
                o = self._reset(i, self._seed + self.n * self._episodes[i] + i)
            obs.append(o)
        return self._stack(obs), rew, term, trunc, {"final_success": success, "reset": term | trunc}

    def physics(self) -> None:
        """Advance every scene by one control step of physics, in parallel threads."""
        envs = self.envs
        m0 = envs[0].model
        size = mujoco.mj_stateSize(m0, STATE)
        state0 = np.empty((self.n, size))
        for i, env in enumerate(envs):
            mujoco.mj_getState(env.model, env.data, state0[i], STATE)
        ctrl = np.stack([env.data.ctrl for env in envs])[:, None, :]
        warm = np.stack([env.data.qacc_warmstart for env in envs])
        nstep = envs[0].n_substeps
        state, _ = rollout.rollout(
            [env.model for env in envs],
            self._thread_data,
            state0,
            np.repeat(ctrl, nstep, axis=1),
            control_spec=mujoco.mjtState.mjSTATE_CTRL,
            nstep=nstep,
            initial_warmstart=warm,
            persistent_pool=True,
        )
        for i, env in enumerate(envs):
            mujoco.mj_setState(env.model, env.data, state[i, -1], STATE)
            mujoco.mj_forward(env.model, env.data)

    @staticmethod
    def _stack(obs: list[dict]) -> dict:
        return {k: np.stack([o[k] for o in obs]) for k in obs[0] if k != "images"}
