"""Scripted experts, one per task: the teachers for imitation and the baseline for later stages."""

from academy.sim.experts import handover, place_part, sort_cells  # noqa: F401  (registration)
from academy.sim.experts.base import REGISTRY, Expert, make_expert

__all__ = ["REGISTRY", "Expert", "make_expert"]
