import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def small_recording(tmp_path_factory):
    """A short real recording: one place_part episode cut to 2 s, full-size images."""
    from academy.human.record import record

    out = tmp_path_factory.mktemp("rec") / "place_part-000005"
    return record(out, "place_part", [5], person_seed=1, max_frames=60)
