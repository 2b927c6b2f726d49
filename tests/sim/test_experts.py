import pytest

from academy.sim.rollout_expert import run_expert


@pytest.mark.parametrize("task", ["sort_cells", "place_part", "handover"])
def test_expert_solves_a_small_seeded_sample(task):
    results = run_expert(task, list(range(5)))
    assert sum(r.success for r in results) >= 4, [(r.seed, r.success) for r in results]
