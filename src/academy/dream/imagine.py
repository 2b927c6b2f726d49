"""Practice in imagination: the batched workcell's interface, stepped by the world model.

``DreamScenes`` stands where ``BatchedWorkcellEnv`` stands in practice's rollout workers, so the
same residual PPO (academy.practice) trains in the model instead of the physics. As in MBPO
(Janner et al. 2019), rollouts are short and branch from real states: each scene starts at a
frame drawn from the store's episodes of its task (any frame that leaves ``horizon`` steps to
the episode's end, so the branch starts where the real episode still had work to do), rolls
``horizon`` steps and is truncated there (PPO bootstraps from the value). Each row follows one
ensemble member drawn afresh per step (trajectory sampling, Chua et al. 2018).

The physics of a branch is the recorded context of the frame it starts from, or with
``context_ranges`` one drawn per branch: practice under physics the store never saw
(lower friction, heavier parts). Rewards are the model's: its dense progress head is the
potential, as the physics' task reward is in practice, and an episode ends in success when the
task's own rule holds in the predicted state, in the scene of the episode the branch started from
(``judge="task"``, asked where the predicted reward reaches 0.8; ``dream/judge.py``), or with
``judge="head"`` when the model's success probability passes 0.5. The uncertainty is charged: ``penalty`` per unit of
the ensemble spread relative to the spread on real steps (``info["penalty"]``, which the worker
subtracts from the reward), so the residual gains nothing from steering into what the model
does not know.
"""

from __future__ import annotations

import numpy as np
import torch

from academy.dream.model import CONTEXT, DIMS, GOAL, N_OBJECTS, STATE, X_DIM, WorldModel
from academy.dream.variations import median_spread


class DreamScenes:
    def __init__(self, model: str, datasets: list[str], scene_tasks: list[str], seed: int = 0, horizon: int = 40,
                 context_ranges: dict | None = None, penalty: float = 1.0, min_steps: int = 5, judge: str = "task",
                 judge_from: float = 0.8):
        from academy.dream.fit import Episodes
        from academy.dream.judge import TaskJudge, check_judge
        from academy.sim.tasks import make_task

        self.model = WorldModel.load(model)
        self.n = len(scene_tasks)
        self.scene_tasks = list(scene_tasks)
        self.task_index = np.array([make_task(t).index for t in scene_tasks], np.int64)
        eps = Episodes.load(datasets)
        self.horizon, self.penalty, self.min_steps = horizon, penalty, min_steps
        self.context_ranges = context_ranges
        self.starts: dict[str, list[tuple[int, int]]] = {}  # task -> (episode, frame) start points
        for i, task in enumerate(eps.tasks):
            T = len(eps.x[i])
            self.starts.setdefault(task, []).extend((i, t) for t in range(max(T - horizon, 1)))
        missing = sorted(set(scene_tasks) - set(self.starts))
        if missing:
            raise ValueError(f"the datasets {datasets} hold no episodes of {missing}: nothing to branch from")
        check_judge(judge)
        if judge == "task":
            unseeded = sorted({eps.tasks[i] for i in range(len(eps.x)) if eps.seeds[i] < 0} & set(scene_tasks))
            if unseeded:
                raise ValueError(f"episodes of {unseeded} have no scene seed: the task's rule needs their scenes "
                                 f"(judge='head' uses the model's success head)")
        self.judges = {t: TaskJudge(t) for t in set(scene_tasks)} if judge == "task" else None
        self.judge_from = judge_from
        self.eps = eps
        # the spread the model shows on real steps: the unit of the uncertainty charge
        self.unit = self._real_spread()
        self.rng = np.random.default_rng([seed, 29])
        self.x = np.zeros((self.n, X_DIM), np.float32)
        self.goal = np.zeros((self.n, DIMS[GOAL]), np.float32)
        self.context = np.ones((self.n, len(CONTEXT)), np.float32)
        self.potentials = np.zeros(self.n)
        self.t = np.zeros(self.n, int)
        self.seeds = np.zeros(self.n, int)  # each branch's scene seed (its episode's)
        self.branches = 0

    def _real_spread(self, n: int = 2048) -> float:
        """The median spread over ``n`` recorded steps drawn from the store's episodes."""
        rng = np.random.default_rng(0)
        picks = [(i, int(rng.integers(len(self.eps.x[i]) - 1))) for i in rng.integers(len(self.eps.x), size=n)]
        steps = (np.stack([arr[i][t] for i, t in picks]) for arr in (self.eps.x, self.eps.goal, self.eps.action,
                                                                     self.eps.context))
        return max(median_spread(self.model, *steps), 1e-6)

    def _branch(self, rows: np.ndarray) -> None:
        from academy.sim.randomize import draw_context

        for i in np.flatnonzero(rows):
            starts = self.starts[self.scene_tasks[i]]
            ep, t = starts[int(self.rng.integers(len(starts)))]
            self.x[i], self.goal[i] = self.eps.x[ep][t], self.eps.goal[ep][t]
            self.context[i] = (draw_context(self.context_ranges, self.rng) if self.context_ranges
                               else self.eps.context[ep][t])
            self.potentials[i] = self.eps.reward[ep][t - 1] if t > 0 else 0.0
            self.seeds[i] = self.eps.seeds[ep]
            self.t[i] = 0
            self.branches += 1

    def _obs(self) -> dict:
        return {"proprio": self.x[:, : DIMS[STATE]].copy(), "objects": self.x[:, DIMS[STATE]:].reshape(self.n, N_OBJECTS, 7).copy(),
                "goal": self.goal.copy(), "task": self.task_index.copy(), "context": self.context.copy()}

    def reset(self, seed: int = 0, seeds=None) -> dict:
        self._branch(np.ones(self.n, bool))
        return self._obs()

    @torch.no_grad()
    def step(self, actions: np.ndarray):
        actions = np.asarray(actions, np.float32)
        if actions.shape != (self.n, DIMS["action"]):
            raise ValueError(f"actions must have shape ({self.n}, {DIMS['action']}), got {actions.shape}")
        member = torch.from_numpy(self.rng.integers(len(self.model.members), size=self.n))
        out = self.model.step(torch.from_numpy(self.x), torch.from_numpy(self.goal), torch.from_numpy(actions),
                              torch.from_numpy(self.context), member=member)
        self.x = out["x"].numpy().copy()
        self.t += 1
        dense = out["reward"].numpy().astype(np.float64)
        success = self._success(out) & (self.t >= self.min_steps)
        trunc = ~success & (self.t >= self.horizon)
        reset = success | trunc
        penalty = self.penalty * out["uncertainty"].numpy() / self.unit
        self.potentials = dense.copy()
        self._branch(reset)
        return self._obs(), dense, success, trunc, {"final_success": success, "reset": reset, "penalty": penalty}

    def _success(self, out: dict) -> np.ndarray:
        if self.judges is None:
            return out["success"].numpy() > 0.5
        won = np.zeros(self.n, bool)
        ask = (out["reward"].numpy() >= self.judge_from) & (self.t >= self.min_steps)
        tasks = np.array(self.scene_tasks)
        for task, judge in self.judges.items():
            rows = np.flatnonzero(ask & (tasks == task))
            if len(rows):
                won[rows] = judge(self.x[rows], self.seeds[rows])
        return won

    def potential(self, i: int) -> float:
        return float(self.potentials[i])

    def close(self) -> None:
        for judge in (self.judges or {}).values():
            judge.close()
