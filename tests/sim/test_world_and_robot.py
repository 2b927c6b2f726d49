import numpy as np

from academy.sim import robot
from academy.sim.experts.ik import ArmIK
from academy.sim.world import Workcell, load_model


def test_robot_has_28_position_actuators_with_limits():
    m = load_model()
    assert m.nu == robot.N_ACTUATORS == 28
    assert [m.actuator(i).name for i in range(m.nu)] == list(robot.JOINTS)
    assert np.all(m.actuator_forcelimited == 1) and np.all(m.actuator_forcerange[:, 1] > 0)
    assert np.all(m.jnt_limited[[m.joint(j).id for j in robot.JOINTS]])
    for cam in robot.CAMERAS:
        m.camera(cam)  # raises if missing


def test_home_posture_puts_hands_where_documented():
    m = load_model()
    for side in robot.SIDES:
        pos, _ = ArmIK(m, side).site_pose(np.array(robot.HOME))
        np.testing.assert_allclose(pos, robot.HOME_HAND_POS[side], atol=0.003)


def test_fixture_clearance_moves_the_walls():
    w = Workcell(load_model())
    w.set_fixture_clearance(0.002)
    assert abs(w.fixture_clearance() - 0.002) < 1e-9
    w.set_fixture_clearance(0.008)
    assert abs(w.fixture_clearance() - 0.008) < 1e-9
