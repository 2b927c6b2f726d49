"""The flywheel closed: cycles of learn, practice, dream, exam, release, deploy and a fleet shift,
each cycle's fleet episodes (failures corrected) feeding the next (academy run --cycles N)."""

from academy.flywheel.cycle import FlywheelConfig, run_flywheel

__all__ = ["FlywheelConfig", "run_flywheel"]
