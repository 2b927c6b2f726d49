"""Plans carried out by the one policy with its instruction vector; the planner in release bundles."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from academy.cli import app
from academy.command.exam import examine, save_exam
from academy.command.planner import EmbeddingPlanner, build_planner
from academy.command.run import CommandError, carry_out
from academy.learn.policy import Policy
from academy.release.bundle import BundleError
from academy.release.publish import ReleaseHome


@pytest.fixture(scope="module")
def conditioned_policy(tiny_policy, planner_dir, tmp_path_factory):
    """The tiny policy's two handover demos, trained with the planner's instruction vectors."""
    from academy.learn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("conditioned") / "policy"
    train(tiny_policy.parent / "ds", out, TrainConfig(max_steps=60, max_minutes=1, batch_size=32, hidden=32, layers=1,
                                                      threads=1, instructions=str(planner_dir)))
    return out


@pytest.fixture(scope="module")
def other_planner(tmp_path_factory):
    """A planner with another projection (other instruction vectors), examined on a small set."""
    from instrsets import DEV, TEST_GOALS

    folder = build_planner(tmp_path_factory.mktemp("other") / "planner", version="1.1.0", seed=1)
    save_exam(folder, examine(EmbeddingPlanner(folder), DEV, goals=TEST_GOALS))
    return folder


def test_training_with_instructions_keeps_each_skills_vector(conditioned_policy, planner, tiny_policy):
    saved = json.loads((conditioned_policy / "instructions.json").read_text())
    assert saved["texts"]["handover"] == planner.spec["skill_texts"]["handover"]
    policy = Policy.load(conditioned_policy)
    assert np.allclose(policy.instructions[policy.tasks.index("handover")], planner.skill_vector("handover"))
    assert not Policy.load(tiny_policy).instructions.any()  # trained without: zeros, as before


def test_a_plan_is_carried_out_step_by_step_with_its_instruction(conditioned_policy, planner, other_planner, tmp_path):
    plan = planner.plan("hand the part over, then hand it over again")
    assert [s.skill for s in plan.steps] == ["handover"]  # the same step twice in a row is one step
    out = carry_out(plan, conditioned_policy, planner, seed=3, video_dir=tmp_path)
    assert out["conditioned_on_instructions"] and out["robot"] == "simulation"
    assert [s["seed"] for s in out["steps"]] == [3] and isinstance(out["steps"][0]["success"], bool)
    assert (tmp_path / "step1-handover.mp4").stat().st_size > 0
    with pytest.raises(CommandError, match=r"not trained on \['sort_cells'\]"):
        carry_out(planner.plan("sort the cells, then hand the part over"), conditioned_policy, planner)
    with pytest.raises(CommandError, match="not the one the policy was trained with"):
        carry_out(plan, conditioned_policy, EmbeddingPlanner(other_planner))
    with pytest.raises(CommandError, match="refused"):
        carry_out(planner.plan("open the door"), conditioned_policy, planner)


def test_the_planner_ships_in_bundles_and_updates_on_its_own(tiny_policy, exam_report, planner_dir, other_planner,
                                                             conditioned_policy, tmp_path):
    home = ReleaseHome(tmp_path / "rel")
    home.init()
    first = home.publish(str(tiny_policy), exam_report, planner=planner_dir)
    assert first.manifest["planner"]["version"] == "1.0.0" and "planner/planner.json" in first.manifest["files"]
    assert first.manifest["planner"]["exam"]["accuracy"] >= 0.95
    # a policy release carries the planner over unchanged
    second = home.publish(str(tiny_policy), exam_report)
    assert second.manifest["planner"] == first.manifest["planner"]
    # a planner release carries the policy over unchanged: the delta is the planner and the small files
    third = home.publish_planner(other_planner, note="planner 1.1.0")
    assert third.manifest["planner"]["version"] == "1.1.0"
    assert third.manifest["policy_sha256"] == second.manifest["policy_sha256"]
    changed = {n for n, f in third.manifest["files"].items() if f["sha256"] != second.manifest["files"][n]["sha256"]}
    assert changed == {"planner/planner.json", "planner/projection.npy", "planner/exam.json"}
    assert third.delta["delta_bytes"] <= sum(third.manifest["files"][n]["length"] for n in changed)
    home.verify(3)
    # a planner that has not passed its exam does not ship
    unexamined = build_planner(tmp_path / "unexamined")
    with pytest.raises(ValueError, match="has not been examined"):
        home.publish_planner(unexamined)
    # a policy trained with one planner's vectors does not ship with another's
    with pytest.raises(BundleError, match="other vectors than the policy was trained with"):
        home.publish(str(conditioned_policy), exam_report, planner=other_planner)


def test_cli_command_plans_refuses_and_runs_a_bundle(tiny_policy, exam_report, planner_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ACADEMY_PLANNER", str(planner_dir))
    runner = CliRunner()
    r = runner.invoke(app, ["command", "put the blue cells in their bin", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["plan"] == [{"skill": "sort_cells", "args": {"colours": ["blue"], "count": None}}]
    r = runner.invoke(app, ["command", "sort the purple cells"])
    assert r.exit_code == 3 and "refused (impossible): there are no purple cells" in r.output
    home = ReleaseHome(tmp_path / "rel")
    home.init()
    home.publish(str(tiny_policy), exam_report, planner=planner_dir)
    r = runner.invoke(app, ["command", "do the handover", "--bundle", str(home.bundle_dir(1)), "--json"])
    assert r.exit_code in (0, 1), r.output  # 1: the tiny policy may fail the step; the outcome is printed either way
    out = json.loads(r.output)
    assert out["outcome"]["steps"][0]["skill"] == "handover" and out["plan"]["planner"] == "embedding-1.0.0"
    assert (r.exit_code == 0) == out["outcome"]["success"]
