import numpy as np
import pytest

from academy.sim import robot
from academy.sim.batched import BatchedWorkcellEnv
from academy.sim.env import WorkcellEnv


def test_batched_steps_every_scene_like_the_single_env():
    b = BatchedWorkcellEnv("place_part", n=3, nthread=2)
    obs = b.reset(seed=10)
    assert obs["proprio"].shape == (3, 56) and obs["objects"].shape == (3, 11, 7)
    single = WorkcellEnv("place_part")
    s_obs, _ = single.reset(11)  # scene 1 of the batch uses seed 10 + 1
    np.testing.assert_array_equal(obs["objects"][1], s_obs["objects"])
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = np.array(robot.HOME) + rng.normal(0, 0.05, (3, 28))
        obs, rew, term, trunc, _ = b.step(a)
        s_obs, s_rew, *_ = single.step(a[1])
    # same physics, same commands: the batched scene tracks the single env closely
    np.testing.assert_allclose(obs["proprio"][1, :28], s_obs["proprio"][:28], atol=1e-4)
    np.testing.assert_allclose(rew[1], s_rew, atol=1e-4)


def test_batched_refuses_wrong_shapes():
    b = BatchedWorkcellEnv("handover", n=2, nthread=1)
    b.reset()
    with pytest.raises(ValueError, match="shape \\(2, 28\\)"):
        b.step(np.zeros((3, 28)))
    with pytest.raises(ValueError, match="3 tasks given for 2 scenes"):
        BatchedWorkcellEnv(["handover"] * 3, n=2)
    with pytest.raises(ValueError, match="1 seeds given for 2 scenes"):
        b.reset(seeds=[4])


def test_mixed_tasks_seeds_and_the_reset_hook():
    calls = []

    def hook(i, env):
        calls.append(i)
        if i == 1:
            env.set_task("sort_cells", {"n_cells": 1})

    b = BatchedWorkcellEnv(["handover", "sort_cells"], n=2, nthread=1, on_reset=hook)
    obs = b.reset(seeds=[5, 6])
    assert calls == [0, 1]
    assert list(obs["task"]) == [b.envs[0].task.index, b.envs[1].task.index]
    assert b.envs[1].task.difficulty["n_cells"] == 1 and obs["goal"][1, 0] == 1.0 and obs["goal"][1, 4] == 0.0  # one cell only
    single = WorkcellEnv("handover")
    np.testing.assert_array_equal(obs["objects"][0], single.reset(5)[0]["objects"])
    for env in b.envs:
        env.max_steps = 2  # end both episodes after two steps: the hook runs before each new one
    b.step(np.tile(robot.HOME, (2, 1)))
    _, _, _, trunc, info = b.step(np.tile(robot.HOME, (2, 1)))
    assert trunc.all() and info["reset"].all() and calls == [0, 1, 0, 1]
