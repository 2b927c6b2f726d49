"""Expert for sort_cells: pick each cell from above and drop it into its colour's bin.

The red bin is the right arm's, the blue bin the left's, the green one in the middle either's.
"""

from __future__ import annotations

import numpy as np

from academy.sim.experts.base import Expert, register
from academy.sim.world import N_CELLS, Workcell, load_model

TRAVEL_Z = 1.06  # grasp-site height when carrying (cell bottom clears the bin rims)
DROP_Z = 1.01  # grasp-site height over a bin when letting go
PRE_GRASP = 0.016  # finger closure before a grasp: 36 mm between pads, room for a 18 mm cell
GRASP_ABOVE_CENTRE = 0.015
NEIGHBOUR_RADIUS = 0.07
CARRY_SPEED = 0.2  # m/s with a cell in the hand: faster moves shake it out of the fingers
REACH_TOLERANCE = 0.003  # IK pose error (m) below which a grasp pose counts as reachable
BIN_SLOTS = np.array([[-0.018, -0.018], [-0.018, 0.018], [0.018, -0.018], [0.018, 0.018]])  # near side first


@register
class SortCellsExpert(Expert):
    task = "sort_cells"

    def __init__(self, model=None):
        super().__init__(model)
        world = Workcell(load_model() if model is None else model)
        self.bins = [world.bin_centre(b) for b in range(3)]

    def script(self):
        goal = np.asarray(self.obs["goal"][: N_CELLS * 4]).reshape(N_CELLS, 4)
        todo = [i for i in range(N_CELLS) if goal[i, 0] > 0.5]
        bins = {i: int(np.argmax(goal[i, 1:])) for i in todo}
        dropped = [0, 0, 0]
        # nearest the bins first, so the hand never reaches over a cell still to be picked
        todo.sort(key=lambda i: -self.object_pose(i)[0])
        self.active = None
        while todo:
            i = todo.pop(0)
            b = bins[i]
            cell = self.object_pose(i)
            if cell[2] < 0.85:
                continue  # knocked off the bench: out of reach, leave it
            side = "right" if b == 0 else "left" if b == 2 else ("right" if cell[1] < 0 else "left")
            yield from self.pick(side, i, list(todo))
            slot = self.bins[b] + BIN_SLOTS[dropped[b] % len(BIN_SLOTS)]
            dropped[b] += 1
            yield from self.move(side, [*slot, TRAVEL_Z], speed=CARRY_SPEED)
            yield from self.move(side, [*slot, DROP_Z], speed=0.2)
            yield from self.grip(side, PRE_GRASP, 0.25)
            yield from self.wait(0.3)
            yield from self.move(side, [*slot, TRAVEL_Z], speed=0.3)
        if self.active is not None:
            yield from self.home(self.active)

    def pick(self, side: str, i: int, others: list[int]):
        """Take cell ``i`` from above with ``side``'s hand and lift it to travel height."""
        if self.active is not None and self.active != side:
            yield from self.home(self.active)
        self.active = side
        cell = self.object_pose(i)
        others_xy = [self.object_pose(j)[:2] for j in others]
        yaw = self.grasp_yaw(cell, others_xy, side)
        crowded = any(np.linalg.norm(o - cell[:2]) < NEIGHBOUR_RADIUS for o in others_xy)
        yield from self.grip(side, PRE_GRASP if crowded else 0.0, 0.2)
        yield from self.move(side, [cell[0], cell[1], TRAVEL_Z], yaw)
        cell = self.object_pose(i)
        hover = cell[2] + GRASP_ABOVE_CENTRE + 0.04
        yield from self.move(side, [cell[0], cell[1], hover], speed=0.3)
        yield from self.wait(0.15)  # let the arm settle before the fingers go round the cell
        cell = self.object_pose(i)
        yield from self.move(side, [cell[0], cell[1], cell[2] + GRASP_ABOVE_CENTRE], speed=0.1)
        yield from self.grip(side, 0.04, 0.4)
        yield from self.wait(0.15)
        yield from self.move(side, [cell[0], cell[1], TRAVEL_Z], speed=0.3)

    def grasp_yaw(self, cell: np.ndarray, others, side) -> float:
        """Close the fingers across the line to the nearest neighbour, so they miss it.

        Yaws are scored by IK at the grasp pose itself (the hardest point of the reach); if no
        neighbour-safe yaw is reachable, the best reachable one is taken.
        """
        xy = cell[:2]
        grasp = [xy[0], xy[1], cell[2] + GRASP_ABOVE_CENTRE]
        free = list(np.linspace(-np.pi / 2, np.pi / 2, 7))
        near = [o for o in others if np.linalg.norm(o - xy) < NEIGHBOUR_RADIUS]
        if near:
            nn = min(near, key=lambda o: np.linalg.norm(o - xy))
            phi = float(np.arctan2(nn[1] - xy[1], nn[0] - xy[0]))
            err, yaw = self.reach(side, grasp, [phi, phi + np.pi])
            if err < REACH_TOLERANCE:
                return yaw
        return self.reach(side, grasp, free)[1]
