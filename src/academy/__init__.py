"""Academy: an open robot-learning flywheel (watch, learn, practice, dream, exam, release, deploy, fleet)."""

import os

# Offscreen rendering without a display; must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
