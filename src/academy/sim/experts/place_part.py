"""Expert for place_part: grasp the part from above, carry it over the socket, lower it in."""

from __future__ import annotations

import numpy as np

from academy.sim.experts.base import Expert, register, wrap_angle
from academy.sim.tasks.place_part import SEAT_Z
from academy.sim.world import OBJECTS, quat_yaw

PART = OBJECTS.index("part")
TRAVEL_Z = 1.10
GRASP_ABOVE_CENTRE = 0.03  # grasp site this far above the part's centre
SOCKET_TOP_Z = 0.944


@register
class PlacePartExpert(Expert):
    task = "place_part"

    def script(self):
        side = "right"
        fixture = np.asarray(self.obs["goal"][:2], float)
        part = self.object_pose(PART)
        # a square part: any of its faces will do, so turn the hand the least
        yaw = wrap_angle(quat_yaw(part[3:]))
        yaw = ((yaw + np.pi / 4) % (np.pi / 2)) - np.pi / 4
        yield from self.grip(side, 0.0, 0.2)
        yield from self.move(side, [part[0], part[1], TRAVEL_Z], yaw)
        part = self.object_pose(PART)
        yield from self.move(side, [part[0], part[1], part[2] + GRASP_ABOVE_CENTRE], speed=0.25)
        yield from self.grip(side, 0.04, 0.4)
        yield from self.wait(0.2)
        yield from self.move(side, [part[0], part[1], TRAVEL_Z], speed=0.3)
        # where the part sits in the hand now, and how it is turned against the socket
        for _ in range(2):
            offset, turn = self._part_in_hand(side)
            hand_yaw = self.hand[side][1] - turn
            yield from self.move(side, [*(fixture - offset[:2]), TRAVEL_Z], hand_yaw, speed=0.3)
        # above the socket: part bottom 15 mm over the walls, then re-centre and lower
        half_height = 0.055
        over = SOCKET_TOP_Z + 0.015 + half_height - offset[2]
        yield from self.move(side, [*(fixture - offset[:2]), over], speed=0.2)
        offset, _ = self._part_in_hand(side)
        yield from self.move(side, [*(fixture - offset[:2]), over], min_s=0.3)
        seat = SEAT_Z - offset[2]
        yield from self.move(side, [*(fixture - offset[:2]), seat + 0.003], speed=0.08)
        yield from self.grip(side, 0.0, 0.3)
        yield from self.wait(0.2)
        pos = self.hand[side][0]
        yield from self.move(side, [pos[0], pos[1], TRAVEL_Z], speed=0.3)
        yield from self.home(side)

    def _part_in_hand(self, side: str) -> tuple[np.ndarray, float]:
        """Part position minus hand position (m), and the part's yaw off the socket's axes."""
        part = self.object_pose(PART)
        hand_pos = self.measured_site(side)
        yaw = wrap_angle(quat_yaw(part[3:]))
        turn = ((yaw + np.pi / 4) % (np.pi / 2)) - np.pi / 4
        return part[:3] - hand_pos, turn
