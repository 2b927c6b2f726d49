"""The task's own success rule applied to states the world model predicts.

The model's success head is a learned guess at a rule the task states exactly (part centred in the
socket, seated and upright, no robot geom touching it; the part on the tray target, resting and
let go; ...). ``TaskJudge`` puts a predicted state into a MuJoCo workcell (robot joints and object
poses, then kinematics and collision, which find the contacts) and asks the task itself. The scene (goal,
fixture, tray target) is the source episode's seed's, as in the dream. The physics is nominal: the
rule reads poses and contacts, and the context's friction and mass do not enter it (an object's
size does, through its contacts, within the drawn 8%).
"""

from __future__ import annotations

import mujoco
import numpy as np

from academy.dream.model import DIMS, N_JOINTS, N_OBJECTS, STATE


class TaskJudge:
    def __init__(self, task: str, seed: int):
        from academy.sim.env import WorkcellEnv

        self.env = WorkcellEnv(task)
        self.env.reset(seed)
        self.world, self.data, self.task = self.env.world, self.env.data, self.env.task
        self.base = self.data.qpos.copy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(B,) True where the task's success rule holds in predicted state ``x`` (B, X_DIM)."""
        w, d = self.world, self.data
        out = np.zeros(len(x), bool)
        for i, row in enumerate(np.asarray(x, np.float64)):
            d.qpos[:] = self.base
            d.qpos[w.robot_qpos_adr] = row[:N_JOINTS]  # measured joints: calibration is zero in simulation
            for j, pose in enumerate(row[DIMS[STATE]:].reshape(N_OBJECTS, 7)):
                adr = w.object_qpos_adr[j]
                d.qpos[adr : adr + 3] = pose[:3]
                d.qpos[adr + 3 : adr + 7] = pose[3:] / max(np.linalg.norm(pose[3:]), 1e-9)
            mujoco.mj_kinematics(w.model, d)  # poses, then contacts: all the rule reads
            mujoco.mj_collision(w.model, d)
            out[i] = self.task.success(w, d, self.env.goal)
        return out

    def close(self) -> None:
        self.env.close()
