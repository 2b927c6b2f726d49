import json

import numpy as np
import pytest
import torch

from academy.learn.policy import Policy
from academy.practice.curriculum import Curriculum, randomization_at
from academy.practice.ppo import advantages
from academy.practice.residual import ResidualActorCritic, default_scale, feature_dim
from academy.practice.rollout import policy_batch
from academy.practice.run import PracticeConfig, evaluate_scenes, next_update_fits, practice
from academy.sim.batched import BatchedWorkcellEnv
from academy.sim.randomize import TRAINING_RANGES


@pytest.fixture(scope="module")
def base(tiny_policy):
    return tiny_policy  # tests/conftest.py: two handover demos, 60 training steps


def tiny(base, out, **kw):
    settings = {"tasks": ["handover"], "iterations": 2, "scenes_per_task": 2, "steps": 8, "workers": 2,
                "eval_every": 2, "eval_episodes": 1, "hidden": 16, **kw}
    return PracticeConfig(policy=str(base), out=str(out), **settings)


# ---------------------------------------------------------------- curriculum
def cohort(c, task, outcomes, started):
    for scene, ok in enumerate(outcomes):
        c.record(task, scene, ok, started)


def test_curriculum_promotes_first_term_and_demotes_the_last_raised():
    c = Curriculum(["sort_cells"], window=4)
    start = c.levels()["sort_cells"]
    assert start == {"randomization": 0.0, "n_cells": 1, "spread": 0.3}
    cohort(c, "sort_cells", [True] * 4, started=1)
    assert c.update(1) == ["sort_cells: randomization up to 0.5 (success 100%)"]
    cohort(c, "sort_cells", [True] * 4, started=1)  # episodes begun before the change do not count
    c.record("sort_cells", 0, False, 2)
    c.record("sort_cells", 0, True, 3)  # only a scene's first episode after the change counts
    c.record("sort_cells", 1, True, 2)
    c.record("sort_cells", 2, True, 2)
    assert c.update(2) == []  # scene 3 has not finished one yet: every scene must report
    c.record("sort_cells", 3, True, 2)
    assert c.update(3) == []  # 3 of 4 succeeded: 75%, neither promote (80%) nor demote (30%)
    cohort(c, "sort_cells", [True] * 4, started=4)
    c.update(4)
    assert c.levels()["sort_cells"]["randomization"] == 1.0  # the top: target randomization 1.0
    cohort(c, "sort_cells", [True] * 4, started=5)
    c.update(5)
    assert c.levels()["sort_cells"]["n_cells"] == 2
    cohort(c, "sort_cells", [False] * 4, started=6)
    assert c.update(6) == ["sort_cells: n_cells down to 1 (success 0%)"]
    assert [h["step"] for h in c.history] == [1, 2, 3, 4, 5, 6]


def test_curriculum_tops_are_the_target_and_disabled_starts_there():
    c = Curriculum(["sort_cells", "place_part"], target={"sort_cells": {"n_cells": 10}}, enabled=False)
    levels = c.levels()
    assert levels["sort_cells"]["n_cells"] == 10 and levels["place_part"]["clearance"] == 0.004
    difficulty, randomization = c.target_settings("sort_cells")
    assert difficulty == {"n_cells": 10, "spread": 0.6}  # ladders at their tops, under the practised randomization
    assert randomization.terms["friction"].high == TRAINING_RANGES["friction"][1]
    assert c.target_settings("sort_cells", 0.0) == ({"n_cells": 10, "spread": 0.6}, None)  # or the one asked for
    difficulty, randomization = c.settings("place_part")
    assert difficulty == {"clearance": 0.004, "pose_spread": 0.5}
    assert randomization.terms["friction"].high == TRAINING_RANGES["friction"][1]
    c2 = Curriculum(["place_part"])
    assert c2.ladders["place_part"][1].levels == (0.008, 0.006, 0.004)  # tightening stops at the target
    cohort(c, "sort_cells", [True] * 16, started=1)
    assert c.update(1) == []  # a disabled curriculum never moves


def test_randomization_widens_about_nominal():
    assert randomization_at(0.0) is None
    one, two = randomization_at(1.0), randomization_at(2.0)
    for name, (low, high) in TRAINING_RANGES.items():
        assert one.terms[name].low == pytest.approx(low) and one.terms[name].high == pytest.approx(high)
    assert two.terms["friction"].low == pytest.approx(0.6) and two.terms["friction"].high == pytest.approx(1.5)
    assert two.terms["action_latency"].high == 2 and two.terms["proprio_noise"].high == pytest.approx(0.004)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'stack'"):
        Curriculum(["stack"])


# ---------------------------------------------------------------- PPO pieces
def test_gae_by_hand():
    gamma, lam = 0.9, 0.5
    batch = {"rewards": np.array([[1.0], [0.0], [2.0]]), "values": np.array([[0.5], [1.0], [0.2]]),
             "dones": np.array([[False], [True], [False]]), "truncs": np.array([[False], [True], [False]]),
             "last_value": np.array([3.0])}
    adv, ret = advantages(batch, gamma, lam)
    # step 2: 2 + 0.9 * 3 - 0.2; step 1 ends by time limit: reward + gamma * V(s1), no bootstrap beyond
    d2 = 2 + 0.9 * 3 - 0.2
    d1 = (0 + 0.9 * 1.0) - 1.0
    d0 = 1 + 0.9 * 1.0 - 0.5
    assert adv[2, 0] == pytest.approx(d2)
    assert adv[1, 0] == pytest.approx(d1)
    assert adv[0, 0] == pytest.approx(d0 + gamma * lam * d1)
    np.testing.assert_allclose(ret, adv + batch["values"])


def test_zero_residual_leaves_the_base_policy_unchanged(base):
    plain, practiced = Policy.load(base), Policy.load(base)
    n = len(plain.tasks)
    practiced.residual = ResidualActorCritic(feature_dim(n, plain.cfg.obs_dims), n, default_scale("hands"), hidden=16)
    env = BatchedWorkcellEnv("handover", n=2)
    obs = env.reset(3)
    for _ in range(5):
        a, b = plain.act(policy_batch(obs)), practiced.act(policy_batch(obs))
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)
    with torch.no_grad():
        practiced.residual.actor[-1].bias.fill_(1.0)
    assert np.abs(practiced.act(policy_batch(obs)) - plain.act(policy_batch(obs))).max() > 0


def test_reset_rows_restarts_only_those_rows(base):
    env = BatchedWorkcellEnv("handover", n=2)
    obs = env.reset(5)
    policy = Policy.load(base)
    policy.reset(2)
    for _ in range(4):
        obs, *_ = env.step(policy.act(policy_batch(obs)))
    fresh = Policy.load(base)
    fresh.reset(2)
    policy.reset_rows(np.array([True, False]))
    np.testing.assert_allclose(policy.act(policy_batch(obs))[0], fresh.act(policy_batch(obs))[0], atol=1e-6)


# ---------------------------------------------------------------- a practice run
def test_practice_writes_a_run_that_evaluates_and_loads(base, tmp_path):
    summary = practice(tiny(base, tmp_path / "run"))
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["update"] for r in lines] == [1, 2]
    assert lines[-1]["env_steps"] == 2 * 2 * 8 and "eval" in lines[-1]
    assert (run / "curve.png").stat().st_size > 1000
    saved = json.loads((run / "practice.json").read_text())
    assert [e["update"] for e in saved["evaluations"]] == [0, 2]
    assert saved["before"]["update"] == 0 and set(saved["time_share"]) >= {"physics", "learn", "eval"}
    assert summary["best"]["mean"] >= summary["before"]["mean"]
    policy = Policy.load(run / "policy")
    assert policy.residual is not None
    assert Policy.load(run / "policy", base_only=True).residual is None
    # the kept policy's evaluation reproduces on the same seeds, under the randomization practised for
    assert saved["config"]["eval_randomization"] is None  # default: each task's randomization target (1)
    again = evaluate_scenes(policy, ["handover"], 1, {"handover": ({}, randomization_at(1.0))})
    assert again == summary["best"]["success"]


def test_budget_holds_the_next_update_and_an_evaluation(base, tmp_path):
    # 60 s budget: 30 s gone, the last update took 10 s and the last evaluation 15 s -> 55 s, go on
    assert next_update_fits(30, 10, 15, 60)
    assert not next_update_fits(30, 10, 20, 60)  # 60 s: the evaluation after it would end past the budget
    assert not next_update_fits(50, 0, 15, 60)  # before any update: the opening evaluation alone counts
    # a budget spent by the opening evaluation: no update, no closing evaluation, the learned policy kept
    summary = practice(tiny(base, tmp_path / "spent", iterations=None, minutes=1e-4))
    assert summary["updates"] == 0 and [e["update"] for e in summary["evaluations"]] == [0]
    assert Policy.load(tmp_path / "spent" / "policy").residual is not None  # a zero residual: the base's actions
    assert summary["best"] is summary["before"]


def test_bad_practice_settings_are_named(base, tmp_path):
    with pytest.raises(ValueError, match="backend must be 'local' or 'ray'"):
        practice(tiny(base, tmp_path / "a", backend="spark"))
    with pytest.raises(ValueError, match=r"does not know the task\(s\) \['stack'\]"):
        practice(tiny(base, tmp_path / "b", tasks=["stack"]))
    with pytest.raises(ValueError, match="residual space must be one of"):
        practice(tiny(base, tmp_path / "d", space="wrists"))
    with pytest.raises(FileNotFoundError, match="not a policy checkpoint"):
        practice(tiny(tmp_path, tmp_path / "c"))


def test_ray_backend_matches_local(base, tmp_path):
    pytest.importorskip("ray")
    local = practice(tiny(base, tmp_path / "local"))
    remote = practice(tiny(base, tmp_path / "ray", backend="ray"))
    a = [json.loads(x) for x in (tmp_path / "local" / "log.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "ray" / "log.jsonl").read_text().splitlines()]
    for x, y in zip(a, b):
        for key in ("reward_per_step", "policy_loss", "value_loss", "residual_rms"):
            assert x[key] == y[key], key
    assert local["evaluations"][-1]["success"] == remote["evaluations"][-1]["success"]


def test_fine_tuning_on_one_reality_robot_runs_on_that_robot(base, tmp_path):
    summary = practice(tiny(base, tmp_path / "robot", robot="AH1-1234", iterations=1, eval_every=1))
    assert summary["config"]["robot"] == "AH1-1234" and summary["env_steps"] == 2 * 8
    assert Policy.load(tmp_path / "robot" / "policy").cfg.tasks == Policy.load(base).cfg.tasks


def test_cli_practice_and_its_errors(base, tmp_path):
    from typer.testing import CliRunner

    from academy.cli import app

    runner = CliRunner()
    args = ["practice", "--policy", str(base), "--task", "handover", "--updates", "1", "--scenes", "1",
            "--steps", "4", "--eval-episodes", "1", "--workers", "1"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert "before (base)" in r.output and (tmp_path / "cli" / "policy" / "residual.pt").exists()
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--robot", "AH1-9003"])
    assert r.exit_code != 0 and "held-out reality robot" in r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "r"), "--randomization", "2", "--eval-randomization", "0"])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "r" / "practice.json").read_text())["config"]
    assert config["target"]["handover"]["randomization"] == 2.0 and config["eval_randomization"] == 0.0
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "y"), "-d", "n_cells=4"])
    assert r.exit_code != 0 and "task.knob=value" in r.output


def test_hand_residual_moves_the_grasp_site_by_what_it_asks():
    from academy.practice.residual import HAND_STEP, HandFrame
    from academy.sim import robot

    frame = HandFrame()
    q = np.array([robot.HOME, robot.HOME], float)
    pos, jac = frame.poses(q)
    a = np.zeros((2, 8))
    a[0, :3] = [1.0, 0.0, -1.0]  # right hand: 5 mm forward, 5 mm down
    a[1, 4:7] = [0.0, 1.0, 0.0]  # left hand: 5 mm to its side
    a[1, 7] = 1.0  # and its grip 2 mm tighter
    delta = frame.to_joints(jac, a * np.array([HAND_STEP] * 3 + [0.002] + [HAND_STEP] * 3 + [0.002]))
    moved, _ = frame.poses(q + delta)
    np.testing.assert_allclose(moved[0, 0] - pos[0, 0], [0.005, 0, -0.005], atol=3e-4)
    np.testing.assert_allclose(moved[0, 1], pos[0, 1], atol=1e-9)  # the other hand stays
    np.testing.assert_allclose(moved[1, 1] - pos[1, 1], [0, 0.005, 0], atol=3e-4)
    fingers = [robot.JOINTS.index(f"left_{f}") for f in ("thumb", "index", "middle")]
    np.testing.assert_allclose(delta[1, fingers], 0.002)
