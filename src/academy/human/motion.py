"""How a person does each task: pinch-point paths, hand apertures and what the hands carry.

A ``Performance`` is written at the video's frame rate as a script of hand motions, like the
robot's experts, but with a person's habits: minimum-jerk reaches through a via point (the
approach varies), a speed of their own that varies per reach, pauses, and now and then a
regrasp. What a hand holds moves with it (the scene is posed, not simulated); on release an
object settles where it was let go.

The result per frame: each hand's pinch point (midway between thumb and index tips), the
yaw of its closing axis, its aperture (thumb-to-index gap, m), and every object's pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from academy.human.body import SIDES
from academy.sim.experts import handover as handover_expert
from academy.sim.experts import place_part as place_expert
from academy.sim.experts import sort_cells as sort_expert
from academy.sim.experts.base import min_jerk, wrap_angle
from academy.sim.world import (
    BENCH_TOP_Z,
    CELL_HALF_HEIGHT,
    N_CELLS,
    OBJECTS,
    PART_HALF,
    TRAY_TOP_Z,
    quat_up_axis,
    quat_yaw,
    yaw_quat,
)

FPS = 30
# A person pinches an object at the height where the robot's grasp site must be less this:
# the robot's pads reach below its grasp site (docs/robot.md), a person's fingertips are the pads.
PINCH_BELOW_SITE = 0.015
REST = {"right": np.array([0.20, -0.26, 1.00]), "left": np.array([0.20, 0.26, 1.00])}  # hands at rest by the bench edge
OPEN = 0.075  # relaxed thumb-to-index gap (m)
TRAVEL_Z = 1.07
PART = OBJECTS.index("part")
SEAT_Z = BENCH_TOP_Z + 0.004 + PART_HALF[2]
BIN_FLOOR_Z = BENCH_TOP_Z + 0.008


@dataclass
class Habits:
    """One person's way of moving, drawn per take."""

    speed: float = 0.45  # m/s of a typical reach
    pause_chance: float = 0.3
    regrasp_chance: float = 0.15
    via_spread: float = 0.04  # how far a reach's via point strays from the straight line (m)
    precision: float = 0.002  # how far from the object's centre a grasp lands (m)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Habits":
        return cls(speed=rng.uniform(0.30, 0.60), pause_chance=rng.uniform(0.1, 0.4),
                   regrasp_chance=rng.uniform(0.05, 0.25), via_spread=rng.uniform(0.01, 0.06),
                   precision=rng.uniform(0.001, 0.003))


@dataclass
class Frame:
    pinch: np.ndarray  # (2, 3) in SIDES order
    yaw: np.ndarray  # (2,)
    aperture: np.ndarray  # (2,)
    objects: np.ndarray  # (n_objects, 7)
    holding: tuple = (-1, -1)  # object index held by each hand, -1 for none


@dataclass
class Performance:
    """Writes a person's frames; task scripts call ``move``, ``grip``, ``grasp``, ``release``, ``wait``."""

    objects: np.ndarray
    rng: np.random.Generator
    habits: Habits = field(default_factory=Habits)
    frames: list = field(default_factory=list)

    def __post_init__(self):
        self.objects = np.array(self.objects, float)
        self.pinch = np.stack([REST[s] for s in SIDES]).astype(float)
        self.yaw = np.zeros(2)
        self.aperture = np.full(2, OPEN)
        self.held: dict[int, tuple[int, np.ndarray, float, np.ndarray]] = {}  # hand -> (object, offset, yaw0, quat0)

    # ------------------------------------------------------------------ primitives
    def _emit(self) -> None:
        for h, (obj, offset, yaw0, quat0) in self.held.items():
            turn = self.yaw[h] - yaw0
            self.objects[obj, :3] = self.pinch[h] + _rotz(turn) @ offset
            q = np.zeros(4)
            mujoco.mju_mulQuat(q, yaw_quat(turn), quat0)
            self.objects[obj, 3:] = q
        holding = tuple(self.held[h][0] if h in self.held else -1 for h in range(2))
        self.frames.append(Frame(self.pinch.copy(), self.yaw.copy(), self.aperture.copy(), self.objects.copy(), holding))

    def move(self, side: str, pos, yaw: float | None = None, speed: float | None = None, via: bool = True) -> None:
        """Minimum-jerk reach of one pinch point to ``pos`` (through a random via point)."""
        h = SIDES.index(side)
        start, pos = self.pinch[h].copy(), np.asarray(pos, float)
        yaw0 = self.yaw[h]
        yaw1 = yaw0 if yaw is None else yaw0 + wrap_angle(yaw - yaw0)
        v = (speed or self.habits.speed) * self.rng.uniform(0.8, 1.2)
        dist = float(np.linalg.norm(pos - start))
        n = max(3, int(round(FPS * max(0.35, dist / v, abs(yaw1 - yaw0) / 2.5))))
        bend = np.zeros(3)
        if via and dist > 0.05:
            bend = self.rng.normal(0, self.habits.via_spread, 3) * min(1.0, dist / 0.2)
            bend[2] = abs(bend[2])  # people arc over, not under
        for k in range(1, n + 1):
            s = min_jerk(k / n)
            self.pinch[h] = start + s * (pos - start) + 4 * s * (1 - s) * bend
            self.yaw[h] = yaw0 + s * (yaw1 - yaw0)
            self._emit()

    def grip(self, side: str, aperture: float, seconds: float = 0.35) -> None:
        h = SIDES.index(side)
        a0 = self.aperture[h]
        n = max(2, int(round(FPS * seconds * self.rng.uniform(0.8, 1.3))))
        for k in range(1, n + 1):
            self.aperture[h] = a0 + min_jerk(k / n) * (aperture - a0)
            self._emit()

    def grasp(self, side: str, obj: int, width: float) -> None:
        """Close on ``obj`` (``width`` across the fingers); from then on it moves with the hand."""
        self.grip(side, width)
        h = SIDES.index(side)
        offset = _rotz(-self.yaw[h]) @ (self.objects[obj, :3] - self.pinch[h])
        self.held[h] = (obj, offset, self.yaw[h], self.objects[obj, 3:].copy())
        self.wait(0.1, pause=False)

    def release(self, side: str, rest_z: float | None = None) -> None:
        """Open the hand; the object settles at ``rest_z`` (its centre's height on what is below)."""
        h = SIDES.index(side)
        obj = self.held.pop(h)[0]
        if rest_z is not None:
            self.objects[obj, 2] = rest_z
        self.grip(side, OPEN * 0.8, 0.3)

    def wait(self, seconds: float, pause: bool = True) -> None:
        if pause and self.rng.random() < self.habits.pause_chance:
            seconds += self.rng.uniform(0.2, 0.8)  # a person's hesitation
        for _ in range(max(1, int(round(FPS * seconds)))):
            self._emit()

    def pick(self, side: str, obj: int, grasp_at, yaw: float, width: float, above: float = 0.07) -> None:
        """Reach over ``grasp_at``, go down, close on the object (sometimes twice), lift."""
        jitter = np.r_[self.rng.normal(0, self.habits.precision, 2), 0.0]
        target = np.asarray(grasp_at, float) + jitter
        self.move(side, target + [0, 0, above], yaw)
        self.wait(0.1)
        self.move(side, target, speed=0.15, via=False)
        if self.rng.random() < self.habits.regrasp_chance:  # close, not happy, open and adjust
            self.grip(side, width + 0.004)
            self.grip(side, width + 0.025, 0.25)
            target = np.asarray(grasp_at, float) + np.r_[self.rng.normal(0, self.habits.precision / 2, 2), 0.0]
            self.move(side, target, speed=0.05, via=False)
        self.grasp(side, obj, width)
        self.move(side, target + [0, 0, above], speed=0.25, via=False)

    def rest(self, side: str) -> None:
        self.move(side, REST[side], 0.0)
        self.aperture[SIDES.index(side)] = OPEN


def _rotz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ---------------------------------------------------------------------- task scripts
def sort_cells(p: Performance, goal: dict, bin_centres: list[np.ndarray]) -> None:
    cells = [i for i in range(N_CELLS) if p.objects[i, 2] > 0.5]
    bins = {i: int(goal["bins"][i]) for i in cells}
    order = sorted(cells, key=lambda i: -p.objects[i, 0] + p.rng.normal(0, 0.02))
    dropped = [0, 0, 0]
    for i in order:
        b = bins[i]
        side = "right" if b == 0 else "left" if b == 2 else ("right" if p.objects[i, 1] < 0 else "left")
        centre = p.objects[i, :3].copy()
        p.pick(side, i, centre + [0, 0, sort_expert.GRASP_ABOVE_CENTRE - PINCH_BELOW_SITE], p.rng.uniform(-0.4, 0.4), 2 * 0.009)
        slot = bin_centres[b][:2] + np.array([[-0.018, -0.018], [-0.018, 0.018], [0.018, -0.018], [0.018, 0.018]])[dropped[b] % 4]
        dropped[b] += 1
        p.move(side, [*slot, TRAVEL_Z], speed=0.3)
        p.move(side, [*slot, 1.00], speed=0.2, via=False)
        p.release(side, BIN_FLOOR_Z + CELL_HALF_HEIGHT)
        p.move(side, [*slot, TRAVEL_Z], speed=0.3, via=False)
        p.rest(side)
        p.wait(0.2)


def place_part(p: Performance, goal: dict) -> None:
    part = p.objects[PART].copy()
    yaw = wrap_angle(quat_yaw(part[3:]))
    yaw = ((yaw + np.pi / 4) % (np.pi / 2)) - np.pi / 4  # any face will do: the least turn
    p.pick("right", PART, part[:3] + [0, 0, place_expert.GRASP_ABOVE_CENTRE - PINCH_BELOW_SITE], yaw, 2 * PART_HALF[0])
    held = p.objects[PART]
    offset = held[:3] - p.pinch[0]
    turn = ((wrap_angle(quat_yaw(held[3:])) + np.pi / 4) % (np.pi / 2)) - np.pi / 4
    fixture = np.asarray(goal["fixture"], float)
    over = SEAT_Z + 0.06
    p.move("right", [*(fixture - offset[:2]), over - offset[2]], p.yaw[0] - turn, speed=0.3)
    p.wait(0.2)
    p.move("right", [*(fixture - offset[:2]), SEAT_Z + 0.003 - offset[2]], speed=0.08, via=False)
    p.release("right", SEAT_Z)
    p.move("right", [*(fixture - offset[:2]), TRAVEL_Z], speed=0.3, via=False)
    p.rest("right")
    p.wait(0.3)


def handover(p: Performance, goal: dict) -> None:
    part = p.objects[PART].copy()
    axis = quat_up_axis(part[3:])
    axis = np.array([axis[0], axis[1], 0.0]) / np.linalg.norm(axis[:2])
    axis = axis if axis[1] >= 0 else -axis
    psi = float(np.arctan2(axis[1], axis[0]))
    above = [0, 0, handover_expert.GRASP_ABOVE_CENTRE - PINCH_BELOW_SITE]
    p.pick("right", PART, part[:3] - 0.035 * axis + above, psi, 2 * PART_HALF[0])
    transfer = np.array([0.37, 0.0, 1.06]) + np.r_[p.rng.normal(0, 0.02, 2), 0.0]
    held = p.objects[PART]
    p.move("right", transfer + p.pinch[0] - held[:3], speed=0.3)
    p.wait(0.2)
    held = p.objects[PART]
    axis = quat_up_axis(held[3:])
    axis = np.array([axis[0], axis[1], 0.0]) / np.linalg.norm(axis[:2])
    axis = axis if axis[1] >= 0 else -axis
    left_at = held[:3] + 0.035 * axis + above
    p.move("left", left_at + [0, 0, 0.06], float(np.arctan2(axis[1], axis[0])))
    p.move("left", left_at, speed=0.12, via=False)
    p.grasp("left", PART, 2 * PART_HALF[0])
    p.held.pop(0)  # the right hand lets go: the left now carries it
    p.grip("right", OPEN * 0.8, 0.3)
    p.move("right", p.pinch[0] + [0, 0, 0.06], speed=0.2, via=False)
    p.rest("right")
    target = np.asarray(goal["target"], float)
    rest_z = TRAY_TOP_Z + PART_HALF[0]
    offset = p.objects[PART][:3] - p.pinch[1]
    p.move("left", [*(target - offset[:2]), TRAVEL_Z - offset[2]], speed=0.3)
    p.move("left", [*(target - offset[:2]), rest_z + 0.004 - offset[2]], speed=0.1, via=False)
    p.release("left", rest_z)
    p.move("left", p.pinch[1] + [0, 0, 0.06], speed=0.2, via=False)
    p.rest("left")
    p.wait(0.3)


SCRIPTS = {"sort_cells": sort_cells, "place_part": place_part, "handover": handover}
