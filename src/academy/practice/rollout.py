"""Rollout workers: scenes of every practised task, the frozen base policy and the residual's noise.

A worker owns its scenes and collects ``steps`` control steps from each with the weights and
curriculum settings the learner sends; it returns plain arrays. The same class runs in-process
(``backend="local"``) or as a Ray actor (``backend="ray"``); its randomness (scene seeds and
exploration noise) comes from its seed alone, so both backends collect the same data.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from academy.learn.policy import Policy
from academy.practice.residual import ResidualActorCritic
from academy.sim.batched import BatchedWorkcellEnv
from academy.sim.reality import RealityRobot

PROGRESS_SCALE = 10.0  # reward per unit of the task's dense progress (it runs 0..1 over a whole task)
SUCCESS_BONUS = 10.0
# The shaping is potential-based with the discount (gamma * phi(s') - phi(s), Ng et al. 1999): without
# the gamma, a discounted return pays for progress made early, and practice learned to hurry the
# base's motions at the cost of precision (success fell from 39% to 15% over 50 updates).


def policy_batch(obs: dict) -> dict:
    """A batched env observation as the policy's observation batch."""
    from academy.data.collect import ENV_KEY, GOAL_KEY, STATE_KEY

    n = obs["proprio"].shape[0]
    return {STATE_KEY: obs["proprio"], ENV_KEY: obs["objects"].reshape(n, -1), GOAL_KEY: obs["goal"], "task": obs["task"]}


class RobotScenes:
    """Reality robots stepped one after the other, with the batched env's interface (fine-tuning on
    a robot: its physics is hidden, so it cannot join a batched physics call)."""

    def __init__(self, serial: str, tasks: list[str]):
        self.envs = [RealityRobot(serial, t) for t in tasks]
        self.n = len(tasks)
        self._episodes = np.zeros(self.n, dtype=int)
        self._seed = 0
        self.on_reset = None

    def reset(self, seed: int = 0, seeds=None) -> dict:
        self._seed = seed
        seeds = [seed + i for i in range(self.n)] if seeds is None else seeds
        return BatchedWorkcellEnv._stack([env.reset(int(s))[0] for s, env in zip(seeds, self.envs)])

    def step(self, actions: np.ndarray):
        out, rew = [], np.zeros(self.n)
        term, trunc, success = np.zeros(self.n, bool), np.zeros(self.n, bool), np.zeros(self.n, bool)
        for i, env in enumerate(self.envs):
            o, rew[i], term[i], trunc[i], info = env.step(actions[i])
            success[i] = info["success"]
            if term[i] or trunc[i]:
                self._episodes[i] += 1
                if self.on_reset is not None:
                    self.on_reset(i, env)
                o, _ = env.reset(self._seed + self.n * self._episodes[i] + i)
            out.append(o)
        return BatchedWorkcellEnv._stack(out), rew, term, trunc, {"final_success": success, "reset": term | trunc}


class RolloutWorker:
    def __init__(self, policy: str, scene_tasks: list[str], seed: int, net_sizes: dict[str, Any],
                 robot: str | None = None, nthread: int | None = None, gamma: float = 0.99, noise_hold: int = 10,
                 dream: dict | None = None):
        torch.set_num_threads(1)
        self.base = Policy.load(policy, base_only=True)
        self.n_tasks = len(self.base.tasks)
        self.net = ResidualActorCritic(**net_sizes)
        self.scene_tasks = list(scene_tasks)
        self.plan: dict = {}
        if dream:  # practice in imagination: the world model steps the scenes (academy.dream.imagine)
            from academy.dream.imagine import DreamScenes

            self.env = DreamScenes(scene_tasks=self.scene_tasks, seed=seed, **dream)
        elif robot:
            self.env = RobotScenes(robot, self.scene_tasks)
            self.env.on_reset = self._configure_robot
        else:
            self.env = BatchedWorkcellEnv(self.scene_tasks, n=len(scene_tasks), nthread=nthread, on_reset=self._configure)
        self.seed, self.gamma, self.noise_hold = seed, gamma, noise_hold
        self.noise = np.zeros((len(scene_tasks), self.net.action_dim), np.float32)
        self.held = np.zeros(len(scene_tasks), int)  # steps each scene's noise has been held
        self.rng = np.random.default_rng([seed, 17])
        self.obs: dict | None = None
        self.potential = np.zeros(len(scene_tasks))

    def _configure(self, i: int, env) -> None:
        if self.plan:
            difficulty, randomization = self.plan[self.scene_tasks[i]]
            env.set_task(self.scene_tasks[i], difficulty)
            env.randomization = randomization

    def _configure_robot(self, i: int, robot: RealityRobot) -> None:
        if self.plan:  # a real robot's physics is what it is: only the task's difficulty changes
            robot.set_task(self.scene_tasks[i], self.plan[self.scene_tasks[i]][0])

    def _potentials(self, rows: np.ndarray) -> None:
        for i in np.flatnonzero(rows):
            if hasattr(self.env, "potential"):  # dreamed scenes keep their potentials themselves
                self.potential[i] = self.env.potential(i)
                continue
            env = self.env.envs[i]
            self.potential[i] = env.potential() if hasattr(env, "potential") else np.nan

    def collect(self, weights: dict, plan: dict, steps: int, update: int = 0) -> dict[str, np.ndarray]:
        """``steps`` control steps of every scene for update ``update``; arrays are (steps, scenes, ...);
        ``started`` is the update in which each step's episode began."""
        self.net.load_state_dict(weights)
        self.plan = plan
        n = len(self.scene_tasks)
        if self.obs is None:
            self.obs = self.env.reset(self.seed)
            self.base.reset(n)
            self._potentials(np.ones(n, bool))
            self.started = np.full(n, update)
            self.batch = policy_batch(self.obs)
            self.base_action = self.base.act(self.batch)
        keys = ("feats", "actions", "logp", "values", "rewards", "dones", "truncs", "successes", "started")
        out: dict[str, list] = {k: [] for k in keys}
        timing = {"physics": 0.0, "policy": 0.0}
        std = self.net.log_std.detach().exp().numpy()
        for _ in range(steps):
            t0 = time.perf_counter()
            batch, base = self.batch, self.base_action
            feats, jac = self.net.observe(batch, base)
            with torch.inference_mode():
                mu, value = self.net(torch.as_tensor(feats))
            mu = mu.numpy()
            fresh = self.held % self.noise_hold == 0  # exploration noise is held for noise_hold steps:
            self.noise[fresh] = self.rng.standard_normal((int(fresh.sum()), mu.shape[1]))  # a drift the task feels
            self.held += 1
            a = (mu + std * self.noise).astype(np.float32)
            logp = (-0.5 * ((a - mu) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
            t1 = time.perf_counter()
            self.obs, dense, term, trunc, info = self.env.step(base + self.net.delta(a, jac))
            t2 = time.perf_counter()
            progress = np.where(np.isfinite(self.potential), self.gamma * dense - self.potential, 0.0)
            reward = PROGRESS_SCALE * progress + SUCCESS_BONUS * info["final_success"] - info.get("penalty", 0.0)
            self.potential = dense.copy()
            self._potentials(info["reset"])
            self.base.reset_rows(info["reset"])
            self.held[info["reset"]] = 0
            began = self.started.copy()  # the update each ending episode began in
            self.started[info["reset"]] = update
            self.batch = policy_batch(self.obs)
            self.base_action = self.base.act(self.batch)  # the base acts once per observation
            timing["physics"] += t2 - t1
            timing["policy"] += time.perf_counter() - t2 + t1 - t0
            for k, v in zip(keys, (feats, a, logp, value.numpy(), reward, info["reset"], trunc & ~term,
                                   info["final_success"], began)):
                out[k].append(np.asarray(v))
        with torch.inference_mode():  # the value of where the rollout stopped
            _, last = self.net(torch.as_tensor(self.net.observe(self.batch, self.base_action)[0]))
        arrays = {k: np.stack(v) for k, v in out.items()}
        arrays["last_value"] = last.numpy()
        arrays["tasks"] = np.array([self.base.tasks.index(t) for t in self.scene_tasks])
        arrays["timing"] = timing
        return arrays

    def close(self) -> None:
        for env in getattr(self.env, "envs", [self.env]):
            env.close()
