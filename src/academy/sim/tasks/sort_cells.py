"""sort_cells: battery cells of two or three colours go into the bin of their colour."""

from __future__ import annotations

import mujoco
import numpy as np

from academy.sim.tasks.base import (
    Knob,
    Task,
    dense_progress,
    pad_goal,
    register,
    sample_spaced_xy,
)
from academy.sim.world import (
    BENCH_TOP_Z,
    BIN_INNER_HALF,
    BIN_RIM_Z,
    CELL_HALF_HEIGHT,
    COLOURS,
    N_CELLS,
    Workcell,
)

# The cells' start region: the centre of the bench that both arms reach (see docs/robot.md).
REGION_CENTRE = np.array([0.335, 0.0])
REGION_HALF = np.array([0.065, 0.10])
ALL_COLOURS = 2 ** len(COLOURS) - 1


def colour_mask(colours: list[str] | str) -> int:
    """The ``colours`` knob for a list of colour names (or "all")."""
    if colours == "all":
        return ALL_COLOURS
    return sum(1 << COLOURS.index(c) for c in set(colours))


@register
class SortCells(Task):
    name = "sort_cells"
    description = "Put every battery cell on the bench into the bin of its colour."
    knobs = (
        Knob("n_cells", 3, 1, N_CELLS, "number of cells on the bench", integer=True),
        Knob("n_colours", 3, 2, 3, "number of distinct cell colours", integer=True),
        Knob("spread", 0.6, 0.0, 1.0, "size of the start region, 0 = tight, 1 = whole band"),
        Knob("clutter", 0.0, 0.0, 1.0, "how close cells may stand: 0 = loose, 1 = 12 mm closer"),
        Knob("colours", ALL_COLOURS, 1, ALL_COLOURS, "which colours to sort, a bit mask over red, green, blue "
             "(1 red, 2 green, 4 blue; 7 every cell): the others stay where they are asked or not", integer=True),
    )
    max_seconds = 4.0

    def time_limit(self) -> float:
        return self.max_seconds + 6.0 * self.difficulty["n_cells"]

    def reset(self, world: Workcell, data: mujoco.MjData, rng: np.random.Generator) -> dict:
        n = self.difficulty["n_cells"]
        # the region never shrinks below what n cells need
        scale = max(0.3 + 0.7 * self.difficulty["spread"], np.sqrt(n / N_CELLS))
        # centre-to-centre gap: 50 mm for up to 5 cells, 38 mm for 10 (what the band holds)
        gap = 0.05 - 0.0024 * max(0, n - 5) - 0.012 * self.difficulty["clutter"]
        xy = sample_spaced_xy(
            rng, n, REGION_CENTRE - scale * REGION_HALF, REGION_CENTRE + scale * REGION_HALF, gap
        )
        # the cells' slots in a canonical order, farthest from the robot (nearest the bins) first:
        # the observation lists a set of alike cells the same way whatever the draw (docs/robot.md)
        xy = xy[np.argsort(-xy[:, 0], kind="stable")]
        palette = rng.permutation(len(COLOURS))[: self.difficulty["n_colours"]]
        bins = [int(b) for b in rng.choice(palette, size=n)]
        for i in range(N_CELLS):
            name = f"cell_{i}"
            if i < n:
                world.set_object_pose(data, name, [*xy[i], BENCH_TOP_Z + world.object_half_height(name)])
                world.set_object_colour(name, COLOURS[bins[i]])
            else:
                world.park(data, [name])
        world.park(data, ["part"])
        mask = self.difficulty["colours"]
        if mask == ALL_COLOURS:
            return {"bins": bins}
        return {"bins": bins, "sort": [i for i, b in enumerate(bins) if mask >> b & 1]}

    def _to_sort(self, goal: dict) -> list[int]:
        return goal.get("sort", range(len(goal["bins"])))

    def goal_vector(self, goal: dict) -> np.ndarray:
        v = np.zeros((N_CELLS, 1 + len(COLOURS)))
        for i in self._to_sort(goal):  # a cell not to be sorted has the row of no cell
            v[i, 0] = 1.0
            v[i, 1 + goal["bins"][i]] = 1.0
        return pad_goal(v)

    def _cell_in_bin(self, world: Workcell, data: mujoco.MjData, i: int, b: int) -> bool:
        pos = data.qpos[world.object_qpos_adr[i] : world.object_qpos_adr[i] + 3]
        d = np.abs(pos[:2] - world.bin_centre(b))
        # inside the walls and low enough that it cannot be resting on a rim or held above it
        return bool(np.all(d < BIN_INNER_HALF) and BENCH_TOP_Z < pos[2] < BIN_RIM_Z + 0.02)

    def success(self, world: Workcell, data: mujoco.MjData, goal: dict) -> bool:
        return all(self._cell_in_bin(world, data, i, goal["bins"][i]) for i in self._to_sort(goal))

    def reward(self, world: Workcell, data: mujoco.MjData, goal: dict) -> float:
        if self.success(world, data, goal):
            return 1.0
        scores, next_cell = [], None
        for i in self._to_sort(goal):
            b = goal["bins"][i]
            if self._cell_in_bin(world, data, i, b):
                scores.append(1.0)
                continue
            pos = data.qpos[world.object_qpos_adr[i] : world.object_qpos_adr[i] + 3]
            above_bin = np.array([*world.bin_centre(b), BIN_RIM_Z + CELL_HALF_HEIGHT])
            scores.append(0.5 * dense_progress(np.linalg.norm(pos - above_bin), 0.1))
            next_cell = pos if next_cell is None else next_cell
        hands = [data.site_xpos[s] for s in world.grasp_site.values()]
        reach = dense_progress(min(np.linalg.norm(h - next_cell) for h in hands), 0.05)
        return 0.9 * float(np.mean(scores)) + 0.09 * reach  # < 1 unless solved
