"""Scripted experts: each task's teacher, written as a script of hand motions.

An expert sees only what a policy sees (the observation dict) and answers with joint targets.
Its script is a generator of actions built from three motions: ``move`` (a minimum-jerk path
of one hand's grasp site to a position and yaw, solved by IK at every control step),
``grip`` (finger closure over time) and ``wait``. Object positions are re-read from the
observation at the start of each motion, so the script corrects for what moved.
"""

from __future__ import annotations

from typing import Iterator

import mujoco
import numpy as np

from academy.sim import robot
from academy.sim.env import CONTROL_DT
from academy.sim.experts.ik import ArmIK, yaw_down_quat
from academy.sim.world import load_model, quat_yaw

FINGERS = ("thumb", "index", "middle")
REST = {  # the arm postures IK is pulled towards (elbows down and out, wrists flexed)
    side: np.array(robot.HOME)[[robot.JOINTS.index(j) for j in robot.arm_joints(side)]]
    for side in robot.SIDES
}


def min_jerk(s: float) -> float:
    """Minimum-jerk time scaling: 0 -> 1 with zero velocity and acceleration at both ends."""
    return s**3 * (10 - 15 * s + 6 * s**2)


def wrap_angle(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


class Expert:
    """Base of the scripted experts. Subclasses write ``script()``."""

    task: str

    def __init__(self, model: mujoco.MjModel | None = None):
        model = model if model is not None else load_model()
        self.ik = {side: ArmIK(model, side, REST[side]) for side in robot.SIDES}
        self.finger_index = {
            side: np.array([robot.JOINTS.index(f"{side}_{f}") for f in FINGERS]) for side in robot.SIDES
        }
        self.obs: dict = {}
        self.q = np.array(robot.HOME)

    # ------------------------------------------------------------------ interface
    def reset(self, obs: dict) -> None:
        self.obs = obs
        self.q = np.array(robot.HOME)  # the commanded posture; IK starts from it every step
        self.hand = {}
        for side in robot.SIDES:
            pos, quat = self.ik[side].site_pose(self.q)
            self.hand[side] = (pos, quat_yaw(quat))
        self._script = self.script()

    def act(self, obs: dict) -> np.ndarray:
        self.obs = obs
        try:
            return next(self._script)
        except StopIteration:
            return self.q.copy()

    def script(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    # ------------------------------------------------------------------ observation
    def object_pose(self, index: int) -> np.ndarray:
        return np.asarray(self.obs["objects"][index], float)

    def measured_site(self, side: str) -> np.ndarray:
        """Where the hand's grasp site is now, from the measured joints."""
        return self.ik[side].site_pose(self.obs["proprio"][: robot.N_ACTUATORS])[0]

    # ------------------------------------------------------------------ motions
    def move(self, side: str, pos, yaw: float | None = None, speed: float = 0.35, min_s: float = 0.5):
        """Minimum-jerk path of one hand to ``pos`` (and ``yaw``), at about ``speed`` m/s."""
        start, yaw0 = self.hand[side]
        pos = np.asarray(pos, float)
        yaw1 = yaw0 if yaw is None else yaw0 + wrap_angle(yaw - yaw0)
        seconds = max(min_s, np.linalg.norm(pos - start) / speed, abs(yaw1 - yaw0) / 2.0)
        n = max(1, int(round(seconds / CONTROL_DT)))
        for k in range(1, n + 1):
            s = min_jerk(k / n)
            self._solve(side, start + s * (pos - start), yaw0 + s * (yaw1 - yaw0))
            yield self.q.copy()
        self.hand[side] = (pos, yaw1)

    def grip(self, side: str, closure: float, seconds: float = 0.4):
        """Drive the three finger slides to ``closure`` (0 open .. FINGER_CLOSED shut)."""
        idx = self.finger_index[side]
        start = self.q[idx].copy()
        n = max(1, int(round(seconds / CONTROL_DT)))
        for k in range(1, n + 1):
            self.q[idx] = start + min_jerk(k / n) * (closure - start)
            yield self.q.copy()

    def wait(self, seconds: float):
        for _ in range(max(1, int(round(seconds / CONTROL_DT)))):
            yield self.q.copy()

    def home(self, side: str):
        yield from self.move(side, robot.HOME_HAND_POS[side], 0.0)

    def best_yaw(self, side: str, pos, candidates) -> float:
        """Of several grasp yaws, the one IK reaches best, then the one nearest the hand's own."""
        return self.reach(side, pos, candidates)[1]

    def reach(self, side: str, pos, candidates) -> tuple[float, float]:
        """(IK position error in m, yaw) for the best of several grasp yaws at ``pos``."""
        scored = []
        for yaw in candidates:
            q = self.q.copy()
            for _ in range(4):
                sol, err = self.ik[side].solve(q, np.asarray(pos, float), yaw_down_quat(yaw), iterations=10)
                q[self.ik[side].index] = sol
            scored.append((round(err, 3), abs(wrap_angle(yaw - self.hand[side][1])), wrap_angle(yaw)))
        best = min(scored)
        return best[0], best[2]

    def _solve(self, side: str, pos: np.ndarray, yaw: float) -> None:
        sol, _ = self.ik[side].solve(self.q, pos, yaw_down_quat(yaw))
        self.q[self.ik[side].index] = sol


REGISTRY: dict[str, type[Expert]] = {}


def register(cls: type[Expert]) -> type[Expert]:
    REGISTRY[cls.task] = cls
    return cls


def make_expert(task: str, model: mujoco.MjModel | None = None) -> Expert:
    if task not in REGISTRY:
        raise ValueError(f"no scripted expert for task '{task}'; experts exist for {sorted(REGISTRY)}")
    return REGISTRY[task](model)
