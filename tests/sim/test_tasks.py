import mujoco
import numpy as np

from academy.sim.env import WorkcellEnv
from academy.sim.tasks.place_part import SEAT_Z
from academy.sim.world import BENCH_TOP_Z, TRAY_TOP_Z, PART_HALF, yaw_quat
from academy.sim.tasks.handover import lying_quat


def _settle(env, seconds=0.5):
    mujoco.mj_step(env.model, env.data, nstep=int(seconds / env.model.opt.timestep))


def test_sort_cells_success_only_when_every_cell_is_in_its_bin():
    env = WorkcellEnv("sort_cells", {"n_cells": 2})
    env.reset(1)
    w, d, goal = env.world, env.data, env.goal
    assert not env.task.success(w, d, goal) and env.task.reward(w, d, goal) < 1
    for i, b in enumerate(goal["bins"]):
        w.set_object_pose(d, f"cell_{i}", [*w.bin_centre(b), BENCH_TOP_Z + 0.045])
    _settle(env)
    assert env.task.success(w, d, goal) and env.task.reward(w, d, goal) == 1.0
    wrong = (goal["bins"][0] + 1) % 3  # one cell in another colour's bin
    w.set_object_pose(d, "cell_0", [*w.bin_centre(wrong), BENCH_TOP_Z + 0.045])
    _settle(env)
    assert not env.task.success(w, d, goal)


def test_sort_cells_colours_knob_asks_only_for_those_cells():
    from academy.sim.tasks.sort_cells import colour_mask

    env = WorkcellEnv("sort_cells", {"n_cells": 6, "colours": colour_mask(["red"])})
    env.reset(4)
    w, d, goal = env.world, env.data, env.goal
    red = [i for i, b in enumerate(goal["bins"]) if b == 0]
    assert goal["sort"] == red and 0 < len(red) < 6
    rows = env.task.goal_vector(goal)[: 6 * 4].reshape(6, 4)
    assert all(rows[i, 0] == (i in red) for i in range(6))  # a cell not asked for reads as no cell
    for i in red:
        w.set_object_pose(d, f"cell_{i}", [*w.bin_centre(0), BENCH_TOP_Z + 0.045])
    _settle(env)
    assert env.task.success(w, d, goal)  # the other colours stayed on the bench
    full = WorkcellEnv("sort_cells", {"n_cells": 6})
    full.reset(4)
    assert full.goal == {"bins": goal["bins"]}  # the same scene; without the knob, the goal is as before


def test_sort_cells_lists_cells_farthest_from_the_robot_first():
    env = WorkcellEnv("sort_cells", {"n_cells": 5, "spread": 1.0})
    for seed in range(5):
        env.reset(seed)
        x = [env.data.qpos[env.world.object_qpos_adr[i]] for i in range(5)]
        assert x == sorted(x, reverse=True)


def test_place_part_seated_vs_resting_on_the_rim():
    env = WorkcellEnv("place_part")
    env.reset(2)
    w, d, goal = env.world, env.data, env.goal
    assert not env.task.success(w, d, goal)
    w.set_object_pose(d, "part", [*goal["fixture"], SEAT_Z + 0.002], yaw_quat(0.0))
    _settle(env)
    assert env.task.success(w, d, goal)
    # tilted 45 degrees it does not fit: it stays up on the socket walls
    w.set_object_pose(d, "part", [*goal["fixture"], SEAT_Z + 0.06], yaw_quat(np.pi / 4))
    _settle(env)
    assert not env.task.success(w, d, goal)


def test_handover_success_on_target_not_off_it():
    env = WorkcellEnv("handover")
    env.reset(3)
    w, d, goal = env.world, env.data, env.goal
    assert not env.task.success(w, d, goal)
    w.set_object_pose(d, "part", [*goal["target"], TRAY_TOP_Z + PART_HALF[0] + 0.002], lying_quat(0.0))
    _settle(env)
    assert env.task.success(w, d, goal)
    w.set_object_pose(d, "part", [goal["target"][0] + 0.06, goal["target"][1], TRAY_TOP_Z + PART_HALF[0] + 0.002], lying_quat(0.0))
    _settle(env)
    assert not env.task.success(w, d, goal)
