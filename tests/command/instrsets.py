"""The instruction sets of tests/data (a module of its own: several test folders have a conftest)."""

from pathlib import Path

SETS = Path(__file__).parents[1] / "data"
HELDOUT, DEV = SETS / "instructions-heldout.jsonl", SETS / "instructions-dev.jsonl"
