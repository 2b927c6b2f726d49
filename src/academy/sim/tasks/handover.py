"""handover: the right hand picks the part, passes it to the left, which places it on the tray."""

from __future__ import annotations

import mujoco
import numpy as np

from academy.sim.tasks.base import Knob, Task, dense_progress, pad_goal, register
from academy.sim.world import (
    N_CELLS,
    PART_HALF,
    BENCH_TOP_Z,
    TRAY_TOP_Z,
    Workcell,
    yaw_quat,
)

START_CENTRE = np.array([0.34, -0.10])
START_HALF = np.array([0.04, 0.03])
TARGET_HALF = np.array([0.04, 0.02])  # the target's spread on the tray (its rim bounds it)
TARGET_RADIUS = 0.03
# the part lies on its side with its long axis along world y: a -90 deg turn about x
LYING = np.array([np.cos(-np.pi / 4), np.sin(-np.pi / 4), 0.0, 0.0])


def lying_quat(yaw: float) -> np.ndarray:
    """Quaternion of the part lying along y, then turned by ``yaw`` about world z."""
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, yaw_quat(yaw), LYING)
    return out


@register
class Handover(Task):
    name = "handover"
    description = "Pick up the part with the right hand, pass it to the left, place it on the tray target."
    knobs = (
        Knob("pose_spread", 0.5, 0.0, 1.0, "spread of the part's start position and yaw"),
        Knob("target_spread", 0.5, 0.0, 1.0, "spread of the target mark on the tray"),
    )
    max_seconds = 16.0

    def reset(self, world: Workcell, data: mujoco.MjData, rng: np.random.Generator) -> dict:
        s = self.difficulty["pose_spread"]
        xy = START_CENTRE + rng.uniform(-1, 1, 2) * START_HALF * s
        yaw = rng.uniform(-1, 1) * 0.3 * s
        world.set_object_pose(data, "part", [*xy, BENCH_TOP_Z + PART_HALF[0]], lying_quat(yaw))
        offset = rng.uniform(-1, 1, 2) * TARGET_HALF * self.difficulty["target_spread"]
        world.model.site_pos[world.tray_target_site][:2] = offset
        world.park(data, [f"cell_{i}" for i in range(N_CELLS)])
        return {"target": world.tray_target().tolist()}

    def goal_vector(self, goal: dict) -> np.ndarray:
        return pad_goal(goal["target"])

    def success(self, world: Workcell, data: mujoco.MjData, goal: dict) -> bool:
        pos = world.object_pose(data, "part")[:3]
        on_target = np.linalg.norm(pos[:2] - goal["target"]) < TARGET_RADIUS
        resting = pos[2] < TRAY_TOP_Z + PART_HALF[0] + 0.01
        return bool(on_target and resting and not world.touching_robot(data, "part"))

    def reward(self, world: Workcell, data: mujoco.MjData, goal: dict) -> float:
        if self.success(world, data, goal):
            return 1.0
        pos = world.object_pose(data, "part")[:3]
        hands = [data.site_xpos[s] for s in world.grasp_site.values()]
        reach = dense_progress(min(np.linalg.norm(h - pos) for h in hands), 0.05)
        place = dense_progress(np.linalg.norm(pos[:2] - goal["target"]), 0.1)
        return 0.9 * place + 0.09 * reach  # < 1 unless solved
