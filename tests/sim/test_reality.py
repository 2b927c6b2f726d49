import mujoco
import numpy as np

from academy.sim import robot
from academy.sim.env import WorkcellEnv
from academy.sim.reality import HELD_OUT_SERIALS, RealityRobot

ARM = np.array([("shoulder" in j or "elbow" in j) for j in robot.JOINTS], float)


def _episode(r, seed, steps=20):
    obs, _ = r.reset(seed)
    traj = [obs["proprio"].copy()]
    for k in range(steps):  # a slow sway of the arms: gains and backlash show in motion
        obs, *_ = r.step(np.array(robot.HOME) + 0.15 * np.sin(0.3 * k) * ARM)
        traj.append(obs["proprio"].copy())
    return np.array(traj)


def test_deterministic_for_serial_and_seed():
    a = _episode(RealityRobot("AH1-0042", "place_part"), 7)
    b = _episode(RealityRobot("AH1-0042", "place_part"), 7)
    np.testing.assert_array_equal(a, b)


def test_differs_from_nominal_and_from_another_robot():
    sim = WorkcellEnv("place_part")
    obs, _ = sim.reset(7)
    for k in range(20):
        obs, *_ = sim.step(np.array(robot.HOME) + 0.15 * np.sin(0.3 * k) * ARM)
    r1 = _episode(RealityRobot(HELD_OUT_SERIALS[0], "place_part"), 7)
    r2 = _episode(RealityRobot(HELD_OUT_SERIALS[1], "place_part"), 7)
    assert np.abs(r1[-1, :28] - obs["proprio"][:28]).max() > 1e-3  # calibration, gains, noise
    assert np.abs(r1[-1, :28] - r2[-1, :28]).max() > 1e-3


def test_public_api_hides_the_physics():
    r = RealityRobot(HELD_OUT_SERIALS[0], "sort_cells")
    obs, info = r.reset(0)
    obs, _, _, _, info = r.step(np.array(robot.HOME))
    public = [n for n in dir(r) if not n.startswith("_")]
    assert set(public) == {"serial", "usage_steps", "task", "max_steps", "wear", "set_task", "reset",
                           "step", "render", "close", "enable_safety", "safety_log"}
    for name in public:
        value = getattr(r, name)
        assert not isinstance(value, (mujoco.MjModel, mujoco.MjData, WorkcellEnv, dict)), name
    assert set(obs) == {"proprio", "objects", "goal", "task"}
    assert set(info) <= {"success", "t", "serial", "goal"}
    assert "gain" not in repr(r) and "friction" not in repr(r)


def test_wear_grows_with_use_and_changes_behaviour():
    fresh = RealityRobot("AH1-0007", "place_part")
    worn = RealityRobot("AH1-0007", "place_part", usage_steps=200_000)
    assert fresh.wear == 0.0 and worn.wear == 1.0
    a, b = _episode(fresh, 1), _episode(worn, 1)
    assert np.abs(a - b).max() > 1e-3
    fresh.step(np.array(robot.HOME))
    assert fresh.usage_steps == 21 and fresh.wear > 0


def test_held_out_serials_are_fixed():
    assert HELD_OUT_SERIALS == tuple(f"AH1-{n}" for n in range(9001, 9009))
