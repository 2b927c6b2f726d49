import numpy as np
import pytest

from academy.sim import robot
from academy.sim.env import WorkcellEnv
from academy.sim.randomize import (
    TERMS,
    RandomizationConfig,
    RandomizationError,
    randomize,
    runtime_terms,
)
from academy.sim.world import load_model

# which model fields each term must change
FIELDS = {
    "friction": ["geom_friction"],
    "object_mass": ["body_mass", "body_inertia"],
    "object_size": ["geom_size", "geom_rbound", "body_mass", "body_inertia"],  # density kept
    "actuator_gain": ["actuator_gainprm", "actuator_biasprm"],
    "joint_damping": ["dof_damping"],
    "action_latency": ["numeric_data"],
    "proprio_noise": ["numeric_data"],
    "object_noise": ["numeric_data"],
    "encoder_offset": ["numeric_data"],
    "lighting": ["light_diffuse", "light_pos"],
    "camera_position": ["cam_pos"],
    "camera_rotation": ["cam_quat"],
}


def test_every_term_is_tested():
    assert set(FIELDS) == set(TERMS)


@pytest.mark.parametrize("name", sorted(TERMS))
def test_each_term_changes_the_compiled_model_and_only_its_fields(name):
    nominal = load_model()
    cfg = RandomizationConfig().only(name)
    if name == "action_latency":  # (0, 1) may draw 0: force a nonzero draw
        cfg = RandomizationConfig.from_dict({**{k: False for k in TERMS}, name: [1, 2]})
    out = randomize(nominal, np.random.default_rng(0), cfg)
    for field in FIELDS[name]:
        assert not np.array_equal(getattr(out, field), getattr(nominal, field)), field
    untouched = {f for fs in FIELDS.values() for f in fs} - set(FIELDS[name])
    for field in untouched:
        np.testing.assert_array_equal(getattr(out, field), getattr(nominal, field), err_msg=field)


def test_randomize_is_pure_and_seeded():
    nominal = load_model()
    before = nominal.geom_friction.copy()
    a = randomize(nominal, np.random.default_rng(5))
    b = randomize(nominal, np.random.default_rng(5))
    np.testing.assert_array_equal(nominal.geom_friction, before)
    np.testing.assert_array_equal(a.geom_friction, b.geom_friction)
    np.testing.assert_array_equal(a.body_mass, b.body_mass)


def test_bigger_cells_rest_higher():
    cfg = RandomizationConfig.from_dict({**{k: False for k in TERMS}, "object_size": [1.2, 1.2]})
    env = WorkcellEnv("sort_cells", {"n_cells": 1}, randomization=cfg)
    env.reset(0)
    # a 20% taller cell stands with its centre 20% higher: collision geometry really grew
    z = env.world.object_pose(env.data, "cell_0")[2]
    assert abs(z - (0.90 + 1.2 * 0.0325)) < 0.002


def test_runtime_terms_reach_the_env():
    cfg = RandomizationConfig.from_dict(
        {**{k: False for k in TERMS}, "action_latency": [2, 2], "proprio_noise": [0.01, 0.01]}
    )
    env = WorkcellEnv("place_part", randomization=cfg)
    env.reset(0)
    assert runtime_terms(env.model)[:2] == (2, 0.01)
    q0 = env.observe()["proprio"][:28]
    q1 = env.observe()["proprio"][:28]
    assert 0.005 < np.std(q1 - q0) < 0.03  # noisy readings of the same state


def test_encoder_offsets_are_drawn_per_episode_and_leave_the_scene_alone():
    cfg = RandomizationConfig.from_dict({"encoder_offset": [0.008, 0.008]}).only("encoder_offset")
    zero = RandomizationConfig.from_dict({"encoder_offset": [0.0, 0.0]}).only("encoder_offset")
    env, nominal = WorkcellEnv("place_part", randomization=cfg), WorkcellEnv("place_part", randomization=zero)
    obs, _ = env.reset(3)
    cal = env.actuation.calibration.copy()
    assert 0.004 < np.std(cal) < 0.012 and np.abs(cal).max() <= 0.02 + 1e-12
    env.reset(3)
    assert np.array_equal(cal, env.actuation.calibration)  # the same seed, the same offsets
    env.reset(4)
    assert not np.allclose(cal, env.actuation.calibration)
    env.reset(3)
    ref, _ = nominal.reset(3)
    assert np.allclose(obs["objects"], ref["objects"], atol=1e-4)  # the offsets draw from their own stream
    arm = [robot.JOINTS.index(j) for side in robot.SIDES for j in robot.arm_joints(side)]  # fingers may sit at a stop
    assert np.allclose(obs["proprio"][arm], ref["proprio"][arm], atol=1e-3)  # the readings agree...
    true_q = env.data.qpos[env.world.robot_qpos_adr][arm]
    assert np.allclose(true_q, nominal.data.qpos[nominal.world.robot_qpos_adr][arm] - cal[arm], atol=1e-3)  # ...the joints do not


def test_collect_takes_randomization_terms_by_name():
    from typer.testing import CliRunner

    from academy.cli import app

    r = CliRunner().invoke(app, ["collect", "--task", "handover", "--episodes", "1", "-r", "bogus=0:1"])
    assert r.exit_code != 0 and "unknown randomization term 'bogus'" in r.output
    r = CliRunner().invoke(app, ["collect", "--task", "handover", "--episodes", "1", "-r", "encoder_offset"])
    assert r.exit_code != 0 and "TERM=LOW:HIGH" in r.output


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"gravity": [0.9, 1.1]}, "unknown randomization term 'gravity'"),
        ({"friction": [1.5, 0.5]}, "low 1.5 is above high 0.5"),
        ({"friction": [-1, 1]}, "must stay above 0"),
        ({"action_latency": [0.5, 1]}, "whole numbers"),
        ({"proprio_noise": [-0.1, 0.1]}, "cannot be negative"),
        ({"friction": "lots"}, "expected a bool"),
        ({"friction": {"low": "a"}}, "finite number"),
        ({"friction": {"lo": 0.5}}, "unknown field"),
        (["friction"], "must be a mapping"),
    ],
)
def test_malformed_config_is_refused_naming_the_problem(spec, message):
    with pytest.raises(RandomizationError, match=message):
        RandomizationConfig.from_dict(spec)
