"""Expert for sort_cells: pick each cell from above and drop it into its colour's bin.

The red bin is the right arm's, the blue bin the left's; the green one, in the middle, the
right arm's too. Cells are taken in slot order (the task lists them farthest from the robot
first, so a hand never reaches over a cell still to be picked). Both choices are made without
ties on what a policy sees: an expert that sorted by position itself (nearest the bins first,
the green bin by which half of the bench the cell is on) showed near-equal cases both ways,
and a network imitating it averaged the two into a reach between two cells (docs/learn.md).
For the same reason the grasp yaw is fixed: turning the fingers across the line to the nearest
neighbour (phi or phi + pi, whichever the arm reached better) was a choice between modes that
a network averaged into the worst yaw, and the expert itself succeeded less often with it.
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
GRASP_YAW = 0.0  # every cell is taken with the hand square to the bench, as it stands at home:
# a cell is round, and the fingers opened to PRE_GRASP clear a neighbour at the tightest gap
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
        self.active = None
        while todo:
            i = todo.pop(0)
            b = bins[i]
            cell = self.object_pose(i)
            if cell[2] < 0.85:
                continue  # knocked off the bench: out of reach, leave it
            side = "left" if b == 2 else "right"
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
        yaw = GRASP_YAW
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
