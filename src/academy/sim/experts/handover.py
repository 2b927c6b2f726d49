"""Expert for handover: right hand lifts the lying part by one end, left takes the other end."""

from __future__ import annotations

import numpy as np

from academy.sim.experts.base import Expert, register
from academy.sim.world import OBJECTS, PART_HALF, TRAY_TOP_Z, quat_up_axis

PART = OBJECTS.index("part")
TRAVEL_Z = 1.06
GRASP_ABOVE_CENTRE = 0.026  # pads reach 35 mm below the site: keep them off the bench
END_OFFSET = 0.035  # each hand grasps this far from the part's centre along its long axis
TRANSFER = np.array([0.37, 0.0, 1.06])  # where the part's centre is held for the pass


@register
class HandoverExpert(Expert):
    task = "handover"

    def script(self):
        target = np.asarray(self.obs["goal"][:2], float)
        part = self.object_pose(PART)
        axis = self._axis(part)
        # right hand: the end with lower y, fingers closing across the part
        grasp = part[:3] - END_OFFSET * axis
        psi = float(np.arctan2(axis[1], axis[0]))  # direction of the long axis
        yaw = self.best_yaw("right", [grasp[0], grasp[1], TRAVEL_Z], [psi, psi + np.pi])
        yield from self.grip("right", 0.0, 0.2)
        yield from self.move("right", [grasp[0], grasp[1], TRAVEL_Z], yaw)
        part = self.object_pose(PART)
        grasp = part[:3] - END_OFFSET * self._axis(part)
        yield from self.move("right", [grasp[0], grasp[1], part[2] + GRASP_ABOVE_CENTRE], speed=0.25)
        yield from self.grip("right", 0.04, 0.4)
        yield from self.wait(0.2)
        yield from self.move("right", [grasp[0], grasp[1], TRAVEL_Z], speed=0.3)
        hand = self.hand["right"][0]
        part = self.object_pose(PART)
        yield from self.move("right", TRANSFER + hand - part[:3], speed=0.3)
        # left hand takes the other end from above
        part = self.object_pose(PART)
        axis = self._axis(part)
        grasp = part[:3] + END_OFFSET * axis
        psi = float(np.arctan2(axis[1], axis[0]))
        yaw = self.best_yaw("left", [grasp[0], grasp[1], grasp[2] + 0.06], [psi, psi + np.pi])
        yield from self.grip("left", 0.0, 0.2)
        yield from self.move("left", [grasp[0], grasp[1], grasp[2] + 0.06], yaw)
        part = self.object_pose(PART)
        grasp = part[:3] + END_OFFSET * self._axis(part)
        yield from self.move("left", [grasp[0], grasp[1], part[2] + GRASP_ABOVE_CENTRE], speed=0.15)
        yield from self.grip("left", 0.04, 0.4)
        yield from self.wait(0.2)
        yield from self.grip("right", 0.0, 0.3)
        pos = self.hand["right"][0]
        yield from self.move("right", [pos[0], pos[1], pos[2] + 0.06], speed=0.2)
        yield from self.home("right")
        # carry to the tray, re-centre the part (not the hand) over the target, set it down
        # (the hand turns on the way to the yaw it reaches best low over the tray; the part
        # fits the tray lying either way)
        rest_z = TRAY_TOP_Z + PART_HALF[0] + 0.004
        place_yaw = self.best_yaw("left", [*target, rest_z + 0.02], [0.0, np.pi / 2, -np.pi / 2])
        for z, speed, yaw in ((TRAVEL_Z, 0.3, place_yaw), (rest_z + 0.03, 0.2, None), (rest_z, 0.1, None)):
            offset = self.object_pose(PART)[:3] - self.measured_site("left")
            yield from self.move("left", [*(target - offset[:2]), z - offset[2]], yaw, speed=speed)
            yield from self.wait(0.1)
        yield from self.grip("left", 0.0, 0.3)
        yield from self.wait(0.2)
        pos = self.hand["left"][0]
        yield from self.move("left", [pos[0], pos[1], TRAVEL_Z], speed=0.3)
        yield from self.home("left")

    @staticmethod
    def _axis(part: np.ndarray) -> np.ndarray:
        """Unit vector along the part's long (body z) axis, flattened and pointing to +y."""
        a = quat_up_axis(part[3:])
        a = np.array([a[0], a[1], 0.0])
        a /= np.linalg.norm(a)
        return a if a[1] >= 0 else -a

