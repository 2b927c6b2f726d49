"""The task's own success rule applied to states the world model predicts.

The model's success head is a learned guess at a rule the task states exactly (part centred in the
socket, seated and upright, no robot geom touching it; the part on the tray target, resting and
let go; ...). ``TaskJudge`` puts a predicted state into a MuJoCo workcell (robot joints and object
poses, then kinematics and collision, which find the contacts) and asks the task itself. The scene
(goal, fixture, tray target) is that of the row's scene seed: one seed for all rows (a dream's
source), or one per row (the what-if rehearsal's and imagined practice's scenes, drawn from many
episodes). The physics is nominal: the rule reads poses and contacts, and the context's friction
and mass do not enter it (an object's size does, through its contacts, within the drawn 8%).
"""

from __future__ import annotations

import mujoco
import numpy as np

from academy.dream.model import DIMS, N_JOINTS, N_OBJECTS, STATE

JUDGES = ("task", "head")  # what calls a dream a success: the task's own rule, or the model's success head


def check_judge(judge: str, name: str = "judge") -> None:
    if judge not in JUDGES:
        raise ValueError(f"{name} must be 'task' (the task's success rule) or 'head' (the model's), got {judge!r}")


class TaskJudge:
    def __init__(self, task: str, seed: int | None = None):
        from academy.sim.env import WorkcellEnv

        self.env = WorkcellEnv(task)
        self.world, self.data, self.task = self.env.world, self.env.data, self.env.task
        self.seed, self.scene = seed, None
        if seed is not None:
            self._scene(seed)

    def _scene(self, seed: int) -> None:
        """The workcell as ``seed``'s episode starts (the task's reset can move fixtures and targets)."""
        if seed != self.scene:
            if seed < 0:
                raise ValueError("an episode without a scene seed cannot be judged by the task's rule")
            self.env.reset(int(seed))
            self.base, self.scene = self.data.qpos.copy(), seed

    def __call__(self, x: np.ndarray, seeds=None) -> np.ndarray:
        """(B,) True where the task's success rule holds in predicted state ``x`` (B, X_DIM), each
        row in its scene: ``seeds`` (B,), or the judge's own seed for every row."""
        if seeds is None:
            if self.seed is None:
                raise ValueError("this judge has no scene of its own: give each row's scene seed")
            seeds = np.full(len(x), self.seed)
        seeds = np.asarray(seeds)
        w, d = self.world, self.data
        x = np.asarray(x, np.float64)
        out = np.zeros(len(x), bool)
        for seed in np.unique(seeds):  # one reset per scene
            self._scene(int(seed))
            for i in np.flatnonzero(seeds == seed):
                d.qpos[:] = self.base
                d.qpos[w.robot_qpos_adr] = x[i, :N_JOINTS]  # measured joints: calibration is zero in simulation
                for j, pose in enumerate(x[i, DIMS[STATE]:].reshape(N_OBJECTS, 7)):
                    adr = w.object_qpos_adr[j]
                    d.qpos[adr : adr + 3] = pose[:3]
                    d.qpos[adr + 3 : adr + 7] = pose[3:] / max(np.linalg.norm(pose[3:]), 1e-9)
                mujoco.mj_kinematics(w.model, d)  # poses, then contacts: all the rule reads
                mujoco.mj_collision(w.model, d)
                out[i] = self.task.success(w, d, self.env.goal)
        return out

    def close(self) -> None:
        self.env.close()
