"""The task contract: a seeded reset distribution, a goal vector, a dense reward, a success test.

A task is one small file that subclasses ``Task`` and registers itself with ``@register``;
the registry is what ``make_task("sort_cells", n_cells=5)`` and the command line read.
Difficulty is a set of named numeric knobs with documented ranges; a value outside its range
is refused with the knob's name and the range.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from academy.sim.world import Workcell

GOAL_DIM = 40  # every task's goal vector is padded to this length, so one policy reads all


@dataclass(frozen=True)
class Knob:
    """One difficulty knob: a named number with a default and an allowed closed range."""

    name: str
    default: float
    low: float
    high: float
    doc: str
    integer: bool = False

    def check(self, task: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TaskError(
                f"{task}: difficulty knob '{self.name}' must be a number, got {value!r}"
            )
        if not (self.low <= value <= self.high):
            raise TaskError(
                f"{task}: difficulty knob '{self.name}'={value} is outside [{self.low}, {self.high}]"
                f" ({self.doc})"
            )
        if self.integer and int(value) != value:
            raise TaskError(f"{task}: difficulty knob '{self.name}' must be a whole number")
        return int(value) if self.integer else float(value)


class TaskError(ValueError):
    """A task name or a difficulty setting that cannot be used."""


class Task(ABC):
    """Base class of every task. Subclasses set the class fields and the four methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    knobs: ClassVar[tuple[Knob, ...]]
    max_seconds: ClassVar[float]  # episode time limit at default difficulty

    def __init__(self, **difficulty: Any):
        known = {k.name: k for k in self.knobs}
        unknown = sorted(set(difficulty) - set(known))
        if unknown:
            raise TaskError(
                f"{self.name}: unknown difficulty knob(s) {unknown}; known: {sorted(known)}"
            )
        self.difficulty = {
            k.name: k.check(self.name, difficulty.get(k.name, k.default)) for k in self.knobs
        }

    def __repr__(self) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in self.difficulty.items())
        return f"{type(self).__name__}({knobs})"

    @property
    def index(self) -> int:
        """The task's id: its position in the registry, stable because tasks are never removed."""
        return list(REGISTRY).index(self.name)

    def max_steps(self, control_dt: float) -> int:
        return int(round(self.time_limit() / control_dt))

    def time_limit(self) -> float:
        """Seconds allowed for an episode at this difficulty (tasks may scale it)."""
        return self.max_seconds

    @abstractmethod
    def reset(self, world: Workcell, data: mujoco.MjData, rng: np.random.Generator) -> dict:
        """Place the objects for a new episode; returns the episode's goal (plain data)."""

    @abstractmethod
    def goal_vector(self, goal: dict) -> np.ndarray:
        """The goal as a fixed-length float vector of ``GOAL_DIM`` (zero-padded)."""

    @abstractmethod
    def reward(self, world: Workcell, data: mujoco.MjData, goal: dict) -> float:
        """Dense shaped reward in [0, 1]; 1 exactly when the task is solved."""

    @abstractmethod
    def success(self, world: Workcell, data: mujoco.MjData, goal: dict) -> bool:
        """The task's success predicate on the current physical state."""


REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    if cls.name in REGISTRY:
        raise TaskError(f"task '{cls.name}' is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def make_task(name: str | Task, **difficulty: Any) -> Task:
    """A task by registered name with difficulty knobs, e.g. ``make_task("sort_cells", n_cells=5)``."""
    if isinstance(name, Task):
        if difficulty:
            raise TaskError("pass difficulty either to the Task or to make_task, not both")
        return name
    if name not in REGISTRY:
        raise TaskError(f"unknown task '{name}'; known tasks: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**difficulty)


def parse_knobs(items: list[str]) -> dict[str, int | float]:
    """Difficulty knobs written as ``knob=value`` -> {knob: number}."""
    out: dict[str, int | float] = {}
    for item in items:
        if "=" not in item:
            raise TaskError(f"difficulty must look like knob=value, got '{item}'")
        k, v = item.split("=", 1)
        try:
            out[k] = int(v) if v.lstrip("-").isdigit() else float(v)
        except ValueError:
            raise TaskError(f"difficulty '{k}' needs a number, got '{v}'") from None
    return out


def parse_task_knobs(items: list[str]) -> dict[str, dict[str, int | float]]:
    """Difficulty knobs written as ``task.knob=value`` -> {task: {knob: number}}, each task's
    knobs checked against it."""
    out: dict[str, dict[str, int | float]] = {}
    for item in items:
        name, _, value = item.partition("=")
        if "." not in name:
            raise TaskError(f"difficulty must look like task.knob=value, got '{item}'")
        task, knob = name.split(".", 1)
        out.setdefault(task, {}).update(parse_knobs([f"{knob}={value}"]))
    for task, knobs in out.items():
        make_task(task, **knobs)
    return out


def pad_goal(values: list[float] | np.ndarray) -> np.ndarray:
    out = np.zeros(GOAL_DIM, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32).ravel()
    out[: len(values)] = values
    return out


def dense_progress(distance: float, scale: float) -> float:
    """A shaping term in (0, 1]: 1 at zero distance, halving every ``scale`` metres."""
    return float(np.exp(-np.log(2.0) * max(distance, 0.0) / scale))


def sample_spaced_xy(
    rng: np.random.Generator,
    n: int,
    low: np.ndarray,
    high: np.ndarray,
    min_gap: float,
    restarts: int = 50,
    tries: int = 300,
) -> np.ndarray:
    """``n`` points uniform in a rectangle, each at least ``min_gap`` from the others.

    Sequential placement can jam in a corner of the space, so it restarts from scratch.
    """
    for _ in range(restarts):
        pts: list[np.ndarray] = []
        for _ in range(tries):
            p = rng.uniform(low, high)
            if all(np.linalg.norm(p - q) >= min_gap for q in pts):
                pts.append(p)
                if len(pts) == n:
                    return np.array(pts)
    raise TaskError(
        f"could not place {n} objects {min_gap:.3f} m apart in the region {low}..{high};"
        " lower the count or the clutter"
    )
