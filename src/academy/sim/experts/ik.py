"""Inverse kinematics for one 7-DoF arm: damped least squares with a posture bias.

Per arm and per control step this is a 6x7 problem, so a closed-form damped least-squares
update (Nakamura/Wampler) with joint-limit clamping and a null-space pull towards a rest
posture is enough; a QP solver (mink) would do the same job at ~10x the cost per step.
The solver uses the nominal model's kinematics only: on a reality robot its answers carry
that robot's calibration error, which is the sim-to-real gap the later stages close.
"""

from __future__ import annotations

import mujoco
import numpy as np

from academy.sim import robot

ROT_ERROR_METRES = 0.05  # 1 rad of hand tilt counts as 50 mm of position error


def yaw_down_quat(yaw: float) -> np.ndarray:
    """Hand orientation for a top-down grasp: fingers down, closing axis rotated by ``yaw``."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class ArmIK:
    """Solves for the seven arm joints of one side that put its grasp site at a pose.

    By default the arm is the robot's; ``joints`` (the full joint vector's names, in order),
    ``arm`` (the arm's joint names) and ``site`` name another body's arm (the human
    demonstrator's uses the same solver).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        side: str,
        rest: np.ndarray | None = None,
        joints: tuple[str, ...] = robot.JOINTS,
        arm: tuple[str, ...] | None = None,
        site: str | None = None,
    ):
        self.model = model
        self.data = mujoco.MjData(model)
        arm = robot.arm_joints(side) if arm is None else arm
        jid = np.array([model.joint(name).id for name in joints])
        self.index = np.array([joints.index(j) for j in arm])  # positions of this arm's joints in the joint vector
        self.all_qpos_adr = model.jnt_qposadr[jid]
        self.qpos_adr = self.all_qpos_adr[self.index]
        self.dof_adr = model.jnt_dofadr[jid][self.index]
        lo, hi = model.jnt_range[jid][self.index].T
        margin = 0.02  # stay off the hard stops
        self.lo, self.hi = lo + margin, hi - margin
        self.site = model.site(robot.GRASP_SITE[side] if site is None else site).id
        n = len(arm)
        self.rest = np.zeros(n) if rest is None else np.asarray(rest, float)
        if self.rest.shape != (n,):
            raise ValueError(f"rest posture for {side} arm needs {n} values, got {self.rest.shape}")
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._quat = np.zeros(4)
        self._err_r = np.zeros(3)

    def site_pose(self, robot_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grasp-site position and quaternion for a full joint vector (the robot's: (28,))."""
        self.data.qpos[self.all_qpos_adr] = robot_q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mju_mat2Quat(self._quat, self.data.site_xmat[self.site])
        return self.data.site_xpos[self.site].copy(), self._quat.copy()

    def solve(
        self,
        robot_q: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray,
        iterations: int = 6,
        damping: float = 0.02,
        rot_weight: float = 0.5,
        posture_gain: float = 0.05,
        free_limits: bool = False,
    ) -> tuple[np.ndarray, float]:
        """Solved joints (in ``self.index`` order) near ``robot_q``, and the pose error.

        The pose error is position error (m) plus ``ROT_ERROR_METRES`` per radian of
        orientation error: a tilted hand knocks things over as surely as a misplaced one.

        ``robot_q`` is the full 28-joint vector: joints this solver does not own stay as given.

        ``free_limits``: a joint held at a limit that the step would push further out is taken
        out of that step's solve, so the other joints make up for it (an active set) instead of
        the step being clipped away; the experts keep plain clipping, the policies' hand-pose IK
        (``learn/actions.py``) uses this to reach poses whose wrist sits at a limit.
        """
        q_all = np.asarray(robot_q, float).copy()
        q = q_all[self.index]
        m, d = self.model, self.data
        for _ in range(iterations):
            q_all[self.index] = q
            d.qpos[self.all_qpos_adr] = q_all
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err_p = target_pos - d.site_xpos[self.site]
            mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.site])
            mujoco.mju_subQuat(self._err_r, target_quat, self._quat)
            # subQuat gives the error in the site's own frame; the Jacobian is in the world's
            err_r_world = d.site_xmat[self.site].reshape(3, 3) @ self._err_r
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.site)
            full = np.vstack([self._jacp[:, self.dof_adr], rot_weight * self._jacr[:, self.dof_adr]])
            err = np.concatenate([err_p, rot_weight * err_r_world])
            free = np.ones(len(q), bool)
            for _ in range(len(q)):
                jac = full * free
                jjt = jac @ jac.T + damping**2 * np.eye(6)
                dq = jac.T @ np.linalg.solve(jjt, err)
                # null-space pull towards the rest posture keeps the elbow where a person expects it
                null = np.eye(len(q)) - jac.T @ np.linalg.solve(jjt, jac)
                dq += free * (null @ (posture_gain * (self.rest - q)))
                if not free_limits:
                    break
                pinned = free & (((q + dq < self.lo) & (q <= self.lo + 1e-6)) | ((q + dq > self.hi) & (q >= self.hi - 1e-6)))
                if not pinned.any():
                    break
                free &= ~pinned
            q = np.clip(q + dq, self.lo, self.hi)
        q_all[self.index] = q
        d.qpos[self.all_qpos_adr] = q_all
        mujoco.mj_kinematics(m, d)
        mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.site])
        mujoco.mju_subQuat(self._err_r, target_quat, self._quat)
        pos_err = float(np.linalg.norm(target_pos - d.site_xpos[self.site]))
        return q, pos_err + ROT_ERROR_METRES * float(np.linalg.norm(self._err_r))
