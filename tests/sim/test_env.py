import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from academy.sim import robot
from academy.sim.env import WorkcellEnv
from academy.sim.gym_env import GYM_IDS, register_envs
from academy.sim.tasks import TaskError, parse_task_knobs


def _rollout(env, seed, steps=10):
    obs, _ = env.reset(seed)
    out = [obs["objects"].copy()]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        a = np.array(robot.HOME) + rng.normal(0, 0.05, 28)
        obs, *_ = env.step(a)
        out.append(obs["proprio"].copy())
    return out


@pytest.mark.parametrize("task", ["sort_cells", "place_part", "handover"])
def test_same_seed_same_episode_different_seed_different_scene(task):
    a = _rollout(WorkcellEnv(task), 3)
    b = _rollout(WorkcellEnv(task), 3)
    c = _rollout(WorkcellEnv(task), 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])


@pytest.mark.parametrize("task", list(GYM_IDS))
def test_gymnasium_env_checker(task):
    register_envs()
    env = gym.make(GYM_IDS[task]).unwrapped
    check_env(env, skip_render_check=True)


def test_camera_images_in_observation():
    env = WorkcellEnv("place_part", cameras=("head_left", "right_wrist"), image_size=(48, 64))
    obs, _ = env.reset(0)
    img = obs["images"]["head_left"]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    env.close()


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(TaskError, match="unknown task 'fold_laundry'"):
        WorkcellEnv("fold_laundry")
    with pytest.raises(TaskError, match="n_cells.*outside \\[1, 10\\]"):
        WorkcellEnv("sort_cells", {"n_cells": 11})
    with pytest.raises(TaskError, match="unknown difficulty knob"):
        WorkcellEnv("place_part", {"speed": 2})
    with pytest.raises(ValueError, match="unknown camera"):
        WorkcellEnv("place_part", cameras=("nose",))
    assert parse_task_knobs(["sort_cells.n_cells=1", "place_part.clearance=0.006"]) == {
        "sort_cells": {"n_cells": 1}, "place_part": {"clearance": 0.006}}
    with pytest.raises(TaskError, match="task.knob=value"):
        parse_task_knobs(["n_cells=1"])
    with pytest.raises(TaskError, match="n_cells.*outside"):
        parse_task_knobs(["sort_cells.n_cells=0"])
    with pytest.raises(TaskError, match="needs a number"):
        parse_task_knobs(["sort_cells.n_cells=one"])
    env = WorkcellEnv("place_part")
    env.reset(0)
    with pytest.raises(ValueError, match="shape \\(28,\\)"):
        env.step(np.zeros(27))
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.full(28, np.nan))
