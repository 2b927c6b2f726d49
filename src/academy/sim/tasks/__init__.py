"""Workcell tasks. Importing this package registers every task file in it."""

from academy.sim.tasks import handover, place_part, sort_cells  # noqa: F401  (registration)
from academy.sim.tasks.base import (GOAL_DIM, REGISTRY, Knob, Task, TaskError, make_task, parse_knobs,
                                    parse_task_knobs)

__all__ = ["GOAL_DIM", "REGISTRY", "Knob", "Task", "TaskError", "make_task", "parse_knobs", "parse_task_knobs"]
