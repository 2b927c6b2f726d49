import pytest

from dshelp import write_dataset


@pytest.fixture
def small(tmp_path):
    return write_dataset(tmp_path / "ds")


@pytest.fixture
def small_video(tmp_path):
    return write_dataset(tmp_path / "dsv", n=3, video=True)
