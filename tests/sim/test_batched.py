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
