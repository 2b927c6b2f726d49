import pytest
from instrsets import HELDOUT, TEST_GOALS


@pytest.fixture(scope="session")
def planner_dir(tmp_path_factory):
    """The default offline planner, built and examined on the held-out instruction set."""
    from academy.command.exam import examine, save_exam
    from academy.command.planner import EmbeddingPlanner, build_planner

    folder = build_planner(tmp_path_factory.mktemp("planner") / "planner")
    save_exam(folder, examine(EmbeddingPlanner(folder), HELDOUT, goals=TEST_GOALS))
    return folder


@pytest.fixture(scope="session")
def planner(planner_dir):
    from academy.command.planner import EmbeddingPlanner

    return EmbeddingPlanner(planner_dir)
