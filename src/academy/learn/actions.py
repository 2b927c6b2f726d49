"""The network's action space: joint targets, or hand poses that inverse kinematics turns into joints.

A dataset's actions are always the robot's 28 joint targets (the LeRobot layout does not
change). A policy may still predict them in another space:

- ``joints``: the 28 targets as they are;
- ``hands``: each hand's grasp-site pose (position, and the first two columns of its rotation
  matrix, a continuous 6-D rotation) plus the joints that are not arm joints (waist, neck,
  fingers) as they are: 14 + 2 x 9 = 32 numbers. Training data is converted by forward
  kinematics (``HandActions``, torch, exact to MuJoCo); at execution ``HandSolver`` turns the
  predicted poses back into arm joints with the experts' damped least-squares IK, warm-started
  from the joints last commanded and pulled towards the same rest posture, so it resolves the
  arm's redundancy as the demonstrator did; a joint held at its limit leaves the solve (an
  active set), so poses the expert reached with its wrist at a stop are reached again.

Why: grasping a part means putting the hand where the part is. In hand space that map is
nearly a translation (target = part position + offset), which a network learns from few
demos to millimetres; in joint space it must learn the arm's inverse kinematics first
(docs/learn.md has the measurements).
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from torch import nn

from academy.learn.kinematics import HandFK
from academy.sim import robot

SPACES = ("joints", "hands")
ARM_INDEX = [robot.JOINTS.index(j) for side in robot.SIDES for j in robot.arm_joints(side)]
PASS_INDEX = [i for i in range(robot.N_ACTUATORS) if i not in ARM_INDEX]  # waist, neck, fingers
HAND_DIM = len(PASS_INDEX) + 2 * 9
HAND_POS = slice(len(PASS_INDEX), len(PASS_INDEX) + 6)  # right then left grasp-site position


def action_dim(space: str, joints: int = robot.N_ACTUATORS) -> int:
    if space not in SPACES:
        raise ValueError(f"unknown action space '{space}': choose one of {SPACES}")
    return joints if space == "joints" else HAND_DIM


class HandActions(nn.Module):
    """joint targets (B, 28) -> hand-space actions (B, 32):
    [non-arm joints (14), right then left grasp-site position (6), right then left rotation
    columns x and y (6 each, row-major of the 3x2 block)]."""

    def __init__(self, specs: list[dict]):
        super().__init__()
        self.fk = HandFK(specs)
        self.register_buffer("pass_index", torch.tensor(PASS_INDEX, dtype=torch.long), persistent=False)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        B = q.shape[0]
        pos, rot = self.fk(q)  # (B, 2, 3), (B, 2, 3, 3)
        return torch.cat([q[:, self.pass_index], pos.reshape(B, 6), rot[..., :2].reshape(B, 12)], dim=-1)


def rotation_from_columns(cols: np.ndarray) -> np.ndarray:
    """The nearest rotation matrix to two (noisy) columns, by Gram-Schmidt; ``cols`` is (3, 2)."""
    a = cols[:, 0] / max(np.linalg.norm(cols[:, 0]), 1e-9)
    b = cols[:, 1] - a * (a @ cols[:, 1])
    b /= max(np.linalg.norm(b), 1e-9)
    return np.stack([a, b, np.cross(a, b)], axis=1)


class HandSolver:
    """hand-space actions (B, 32) and the joints last commanded (B, 28) -> joint targets (B, 28)."""

    def __init__(self, model: mujoco.MjModel | None = None, iterations: int = 6):
        from academy.sim.experts.base import REST
        from academy.sim.experts.ik import ArmIK
        from academy.sim.world import load_model

        model = load_model() if model is None else model
        self.ik = [ArmIK(model, side, REST[side]) for side in robot.SIDES]
        self.iterations = iterations
        self._quat = np.zeros(4)

    def __call__(self, hands: np.ndarray, q_prev: np.ndarray) -> np.ndarray:
        hands = np.asarray(hands, float)
        q = np.array(q_prev, float)
        n_pass = len(PASS_INDEX)
        q[:, PASS_INDEX] = hands[:, :n_pass]
        for b in range(len(q)):
            for s, ik in enumerate(self.ik):
                pos = hands[b, n_pass + 3 * s : n_pass + 3 * s + 3]
                cols = hands[b, n_pass + 6 + 6 * s : n_pass + 12 + 6 * s].reshape(3, 2)
                mujoco.mju_mat2Quat(self._quat, rotation_from_columns(cols).ravel())
                q[b, ik.index], _ = ik.solve(q[b], pos, self._quat, iterations=self.iterations, free_limits=True)
        return q
