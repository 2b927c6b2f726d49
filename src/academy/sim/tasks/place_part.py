"""place_part: pick the part and seat it in the fixture's socket, within its clearance."""

from __future__ import annotations

import mujoco
import numpy as np

from academy.sim.tasks.base import Knob, Task, dense_progress, pad_goal, register
from academy.sim.world import (
    BENCH_TOP_Z,
    CELL_HALF_HEIGHT,
    N_CELLS,
    PART_HALF,
    Workcell,
    quat_up_axis,
    yaw_quat,
)

START_CENTRE = np.array([0.34, -0.08])
START_HALF = np.array([0.05, 0.06])
SEAT_Z = BENCH_TOP_Z + 0.004 + PART_HALF[2]  # part centre when it rests on the socket floor
UPRIGHT_COS = np.cos(np.deg2rad(10.0))


@register
class PlacePart(Task):
    name = "place_part"
    description = "Pick up the part and seat it in the fixture's socket."
    knobs = (
        Knob("clearance", 0.004, 0.001, 0.010, "socket width minus part width (m)"),
        Knob("pose_spread", 0.5, 0.0, 1.0, "spread of the part's start position and yaw"),
    )
    max_seconds = 12.0

    def reset(self, world: Workcell, data: mujoco.MjData, rng: np.random.Generator) -> dict:
        s = self.difficulty["pose_spread"]
        world.set_fixture_clearance(self.difficulty["clearance"])
        xy = START_CENTRE + rng.uniform(-1, 1, 2) * START_HALF * s
        yaw = rng.uniform(-1, 1) * (np.pi / 4) * s
        world.set_object_pose(data, "part", [*xy, BENCH_TOP_Z + PART_HALF[2]], yaw_quat(yaw))
        world.park(data, [f"cell_{i}" for i in range(N_CELLS)])
        return {"fixture": world.fixture_centre().tolist(), "clearance": self.difficulty["clearance"]}

    def goal_vector(self, goal: dict) -> np.ndarray:
        return pad_goal([*goal["fixture"], goal["clearance"]])

    def success(self, world: Workcell, data: mujoco.MjData, goal: dict) -> bool:
        pose = world.object_pose(data, "part")
        centred = np.linalg.norm(pose[:2] - goal["fixture"]) < goal["clearance"] / 2 + 0.003
        seated = pose[2] < SEAT_Z + 0.005
        upright = quat_up_axis(pose[3:])[2] > UPRIGHT_COS
        return bool(centred and seated and upright and not world.touching_robot(data, "part"))

    def reward(self, world: Workcell, data: mujoco.MjData, goal: dict) -> float:
        if self.success(world, data, goal):
            return 1.0
        pos = world.object_pose(data, "part")[:3]
        hand = data.site_xpos[world.grasp_site["right"]]
        place = 0.5 * dense_progress(np.linalg.norm(pos[:2] - goal["fixture"]), 0.05)
        place += 0.5 * dense_progress(pos[2] - SEAT_Z, 0.05) * dense_progress(
            np.linalg.norm(pos[:2] - goal["fixture"]), 0.01
        )
        reach = dense_progress(np.linalg.norm(hand - pos) - CELL_HALF_HEIGHT, 0.05)
        return 0.9 * place + 0.09 * reach  # < 1 unless solved
