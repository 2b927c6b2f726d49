"""The one policy interface every later stage uses: ``Policy.act(obs_batch) -> actions``.

``obs_batch`` maps the dataset's observation keys to (B, dim) arrays, plus ``task`` (B,) task
indices or names and, optionally, ``instruction`` (B, 64); without it, each task's own vector
when the network was trained with instructions (``instructions.json``), else zeros. The policy remembers the actions it
returned (the previous-action input); ``reset`` starts new episodes. ``act`` returns (B, 28) joint
targets for this control step: a network that predicts hand poses has them solved to joints by
IK here (``learn/actions.py``), so every caller sees joint targets. Chunks are executed with temporal ensembling (ACT): each step
predicts a new chunk, and the action for step t is the weighted mean of every chunk's
prediction for t, the i-th prediction made for t (oldest first) weighted exp(-m * i), as ACT does.
A practiced policy (a folder with ``residual.json``, from ``academy practice``) adds its residual's
correction to those joint targets; the network's previous-action input stays its own action.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from academy.learn.checkpoint import INSTRUCTIONS_FILE, load_model
from academy.learn.actions import HandSolver
from academy.learn.model import INSTRUCTION_DIM, OBS_KEYS, ChunkPolicy, net_action_dim


class Policy:
    def __init__(self, model: ChunkPolicy, execution: str = "ensemble", ensemble_m: float = 0.01, replan: int = 5,
                 residual=None, instructions: dict | None = None):
        if execution not in ("ensemble", "receding"):
            raise ValueError(f"execution must be 'ensemble' or 'receding', got '{execution}'")
        self.model = model.eval()
        self.cfg = model.cfg
        self.execution, self.m, self.replan = execution, ensemble_m, replan
        self.solver = HandSolver() if self.cfg.actions == "hands" else None
        self.residual = residual  # practice's correction (academy.practice.residual), if any
        # each task's instruction vector when the network was trained with them (else zeros)
        self.instructions = np.zeros((len(self.cfg.tasks), INSTRUCTION_DIM), np.float32)
        for t, v in ((instructions or {}).get("vectors") or {}).items():
            self.instructions[self.cfg.tasks.index(t)] = v
        self.reset(1)

    @classmethod
    def load(cls, path: str | Path, base_only: bool = False, **kw) -> "Policy":
        """A policy folder; a practiced one (with residual.json) acts with its residual unless ``base_only``."""
        from academy.practice.residual import load_residual

        file = Path(path) / INSTRUCTIONS_FILE
        instructions = json.loads(file.read_text()) if file.exists() else None
        return cls(load_model(path), residual=None if base_only else load_residual(path), instructions=instructions,
                   **kw)

    @property
    def tasks(self) -> list[str]:
        return self.cfg.tasks

    def reset(self, batch_size: int = 1) -> None:
        K, A = self.cfg.chunk, net_action_dim(self.cfg)
        self._B = batch_size
        self._sum = np.zeros((batch_size, K, A))  # ensemble: weighted sums for the next K steps
        self._wsum = np.zeros((batch_size, K, 1))
        self._count = np.zeros((batch_size, K, 1))  # predictions made so far for each coming step
        self._plan = np.zeros((batch_size, K, A))  # receding: the current chunk
        self._prev = None  # the network's last action (the previous-action input), in its space
        self._joints = None  # the joint targets last returned
        self._fresh = None  # rows reset since the last step (reset_rows)
        self._t = 0

    def reset_rows(self, rows: np.ndarray) -> None:
        """Start new episodes in the batch rows where ``rows`` (a (B,) bool mask) is true."""
        if self.execution != "ensemble":
            raise ValueError("reset_rows needs ensemble execution (receding plans run in step for the whole batch)")
        rows = np.asarray(rows, bool)
        if not rows.any():
            return
        for buf in (self._sum, self._wsum, self._count, self._plan):
            buf[rows] = 0
        if self._prev is not None:  # a fresh row's previous action is its measured joints again
            self._fresh = rows if self._fresh is None else (self._fresh | rows)

    def keep_rows(self, rows: np.ndarray) -> None:
        """Drop the batch rows where ``rows`` (a (B,) bool mask) is false: the others go on as they were."""
        rows = np.asarray(rows, bool)
        if rows.shape != (self._B,):
            raise ValueError(f"keep_rows needs a ({self._B},) mask, got {rows.shape}")
        for name in ("_sum", "_wsum", "_count", "_plan", "_prev", "_joints", "_fresh"):
            buf = getattr(self, name)
            if buf is not None:
                setattr(self, name, buf[rows])
        self._B = int(rows.sum())

    def _inputs(self, obs: dict) -> tuple[torch.Tensor, ...]:
        missing = [k for k in (*OBS_KEYS, "task") if k not in obs]
        if missing:
            raise KeyError(f"observation batch lacks {missing}")
        x = [torch.as_tensor(np.asarray(obs[k], np.float32)) for k in OBS_KEYS]
        B = x[0].shape[0]
        for k, v in zip(OBS_KEYS, x):
            if v.shape != (B, self.cfg.obs_dims[k]):
                raise ValueError(f"'{k}' must be (B, {self.cfg.obs_dims[k]}), got {tuple(v.shape)}")
        task = self._task_indices(obs, B)
        instr = obs.get("instruction")
        instr = torch.as_tensor(self.instructions[task] if instr is None else np.asarray(instr, np.float32))
        if self._prev is None or self._fresh is not None:
            with torch.inference_mode():
                measured = self.model.encode_actions(x[0][:, : self.cfg.action_dim])
        if self._prev is None:
            prev = measured
        else:
            prev = torch.as_tensor(np.asarray(self._prev, np.float32))
            if self._fresh is not None:
                prev = torch.where(torch.as_tensor(self._fresh)[:, None], measured, prev)
                if self._joints is not None:  # the IK warm start of a fresh row: its measured joints
                    self._joints[self._fresh] = np.asarray(obs[OBS_KEYS[0]])[self._fresh, : self.cfg.action_dim]
                self._fresh = None
        return (*x, torch.as_tensor(task, dtype=torch.long), instr, prev)

    def _task_indices(self, obs: dict, B: int) -> np.ndarray:
        task = np.asarray(obs["task"]).reshape(B)
        if task.dtype.kind in "US":
            unknown = sorted(set(task) - set(self.tasks))
            if unknown:
                raise ValueError(f"unknown tasks {unknown}; the policy knows {self.tasks}")
            task = np.array([self.tasks.index(t) for t in task])
        if np.any((task < 0) | (task >= len(self.tasks))):
            raise ValueError(f"task index out of range 0..{len(self.tasks) - 1}: {task}")
        return task

    def predict_chunk(self, obs: dict) -> np.ndarray:
        """The raw (B, chunk, action_dim) prediction for this observation."""
        with torch.inference_mode():
            return self.model(*self._inputs(obs)).numpy().astype(np.float64)

    def act(self, obs: dict) -> np.ndarray:
        B = np.asarray(obs[OBS_KEYS[0]]).shape[0]
        if B != self._B:
            self.reset(B)
        if self.execution == "receding":
            k = self._t % self.replan
            if k == 0:
                self._plan = self.predict_chunk(obs)
            self._t += 1
            return self._emit(self._plan[:, k], obs)
        w = np.exp(-self.m * self._count)
        self._sum += w * self.predict_chunk(obs)
        self._wsum += w
        self._count += 1
        action = self._sum[:, 0] / self._wsum[:, 0]
        for buf in (self._sum, self._wsum, self._count):  # step forward: slot 0 is spent
            buf[:, :-1] = buf[:, 1:].copy()
            buf[:, -1] = 0
        self._t += 1
        return self._emit(action, obs)

    def _emit(self, action: np.ndarray, obs: dict) -> np.ndarray:
        """Remember the network's action; return it as joint targets."""
        self._prev = action.astype(np.float32)
        if self.solver is None:
            self._joints = self._prev
        else:
            start = self._joints if self._joints is not None else np.asarray(obs[OBS_KEYS[0]])[:, : self.cfg.action_dim]
            self._joints = self.solver(action, start).astype(np.float32)
        if self.residual is None:
            return self._joints
        task = self._task_indices(obs, len(action))
        return self.residual.correct({**obs, "task": task}, self._joints).astype(np.float32)


class PolicyAgent:
    """A Policy as a single-robot agent (``reset(obs)``, ``act(obs)``) for the env loop."""

    def __init__(self, policy: Policy, instruction: np.ndarray | None = None):
        self.policy = policy
        self.instruction = None if instruction is None else np.asarray(instruction, np.float32)[None]

    def reset(self, obs: dict) -> None:
        self.policy.reset(1)

    def act(self, obs: dict) -> np.ndarray:
        batch = env_obs_batch([obs])
        if self.instruction is not None:
            batch["instruction"] = self.instruction
        return self.policy.act(batch)[0]


def env_obs_batch(observations: list[dict]) -> dict:
    """Env observation dicts -> a policy observation batch."""
    from academy.data.collect import obs_to_features

    batch = obs_to_features(observations)
    batch["task"] = np.array([int(o["task"]) for o in observations])
    return batch
