"""The offline planner: the held-out instruction set, sequencing, arguments, refusals, its folder."""

import json
import shutil

import numpy as np
import pytest
from instrsets import DEV, HELDOUT

from academy.command.exam import passed_exam, read_set, InstructionSetError
from academy.command.planner import EXEMPLARS, EmbeddingPlanner, PlannerError, planner_digest
from academy.command.skills import PlanError, Refusal, Step, check_step, normal_args


def test_the_held_out_set_is_big_varied_and_apart_from_what_the_planner_was_built_on():
    held, dev = read_set(HELDOUT), read_set(DEV)
    assert len(held) >= 200
    refusals = [r for r in held if "refuse" in r]
    assert {r["refuse"] for r in refusals} == {"unknown", "impossible"} and len(refusals) >= 40
    plans = [json.dumps(r["plan"], sort_keys=True) for r in held if "plan" in r]
    phrasings = {p: plans.count(p) for p in set(plans)}
    assert len(phrasings) >= 20 and sorted(phrasings.values())[len(phrasings) // 2] >= 3  # several per plan
    assert max(len(r["plan"]) for r in held if "plan" in r) == 3
    texts = {r["text"] for r in held}
    assert not texts & {r["text"] for r in dev}
    assert not texts & {t for ts in EXEMPLARS.values() for t in ts}


def test_plan_accuracy_on_the_held_out_set_reaches_the_goal(planner_dir):
    report = json.loads((planner_dir / "exam.json").read_text())
    assert report["n"] >= 200
    assert report["accuracy"] >= 0.95, report["wrong"]
    assert report["plans_right"] / report["plans"] >= 0.95
    assert passed_exam(planner_dir)["accuracy"] == report["accuracy"]


def _plan(planner, text):
    p = planner.plan(text)
    return [(s.skill, s.args) for s in p.steps] if p.ok else p.refused


def test_sequencing_words_set_the_order(planner):
    sort_all = ("sort_cells", {"colours": "all", "count": None})
    seat = ("place_part", {"hand": "right"})
    assert _plan(planner, "seat the part, then sort the cells") == [seat, sort_all]
    assert _plan(planner, "sort the cells after you seat the part") == [seat, sort_all]
    assert _plan(planner, "before sorting the cells, seat the part") == [seat, sort_all]
    assert _plan(planner, "seat the part before you sort the cells") == [seat, sort_all]
    # a pick-up clause joins the step that moves what it picked
    assert _plan(planner, "pick up the part and seat it") == [seat]


def test_arguments_colours_counts_and_hands(planner):
    assert _plan(planner, "put the blue and red cells in their bins") == [
        ("sort_cells", {"colours": ["blue", "red"], "count": None})]
    assert _plan(planner, "sort four green cells") == [("sort_cells", {"colours": ["green"], "count": 4})]
    r = _plan(planner, "put the green cells in the red bin")
    assert isinstance(r, Refusal) and r.kind == "impossible" and "own colour" in r.reason
    r = _plan(planner, "seat the part with your left hand")
    assert r.kind == "impossible" and "right hand only" in r.reason
    r = _plan(planner, "pass the part from the left hand to the right hand")
    assert r.kind == "impossible" and "from the right hand to the left only" in r.reason


def test_refusals_name_the_problem_and_the_clause(planner):
    p = planner.plan("sort the cells, then make me a sandwich")
    assert not p.ok and p.refused.kind == "unknown" and p.refused.clause == "make me a sandwich"
    p = planner.plan("sort the yellow cells")
    assert p.refused.kind == "impossible" and "no yellow cells" in p.refused.reason
    p = planner.plan("sort 30 cells")
    assert "1 to 10 cells, not 30" in p.refused.reason
    assert planner.plan("   ").refused.kind == "unknown"
    assert planner.plan("pick up the part").refused.kind == "unknown"


def test_the_library_check_is_the_one_authority():
    assert isinstance(check_step("handover", {"from_hand": "right"}), Step)
    assert check_step("handover", {"from_hand": "left"}).kind == "impossible"
    assert check_step("fly", {}).kind == "unknown"
    assert normal_args("sort_cells", {"colours": ["red", "green", "blue"]})["colours"] == "all"
    with pytest.raises(PlanError, match="takes no argument"):
        normal_args("place_part", {"speed": 3})
    with pytest.raises(PlanError, match="whole number"):
        normal_args("sort_cells", {"count": 2.5})


def test_instruction_vectors_are_unit_length_and_tell_skills_apart(planner):
    v = {s: planner.skill_vector(s) for s in ("sort_cells", "place_part", "handover")}
    assert all(abs(np.linalg.norm(x) - 1) < 1e-5 and x.shape == (64,) for x in v.values())
    assert float(v["sort_cells"] @ v["place_part"]) < 0.9
    # the stored vector is the embedding of the skill's normal form through the projection
    assert float(planner.vector(planner.spec["skill_texts"]["handover"]) @ v["handover"]) > 0.9999


def test_a_planner_folder_is_checked(planner_dir, tmp_path):
    copy = shutil.copytree(planner_dir, tmp_path / "p")
    assert planner_digest(copy) == planner_digest(planner_dir)
    spec = json.loads((copy / "planner.json").read_text())
    spec["threshold"] = 0.2
    (copy / "planner.json").write_text(json.dumps(spec))
    with pytest.raises(PlannerError, match="changed since its exam"):
        passed_exam(copy)
    spec["model"]["sha256"] = "0" * 64
    (copy / "planner.json").write_text(json.dumps(spec))
    with pytest.raises(PlannerError, match="made for model weights 000000000000"):
        EmbeddingPlanner(copy)
    (copy / "projection.npy").unlink()
    spec["model"]["sha256"] = json.loads((planner_dir / "planner.json").read_text())["model"]["sha256"]
    (copy / "planner.json").write_text(json.dumps(spec))
    with pytest.raises(PlannerError, match="projection.npy missing"):
        EmbeddingPlanner(copy)
    (copy / "planner.json").write_text("{not json")
    with pytest.raises(PlannerError, match="not valid JSON"):
        EmbeddingPlanner(copy)


def test_a_bad_instruction_set_is_named(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"text": "sort the cells", "plan": []}\n{"text": "x"}\n')
    with pytest.raises(InstructionSetError, match="set.jsonl:2: needs 'text' and exactly one"):
        read_set(bad)


def test_a_planner_slower_than_its_latency_goal_fails_its_exam(planner, planner_dir, tmp_path):
    from instrsets import DEV

    from academy.command.exam import examine, save_exam

    copy = shutil.copytree(planner_dir, tmp_path / "slow")
    report = examine(planner, DEV, goals={"p99_ms": 1e-6})  # no planner answers in a nanosecond
    assert report["accuracy"] >= 0.9 and not report["passed"] and report["goals"]["p99_ms"] == 1e-6
    save_exam(copy, report)
    with pytest.raises(PlannerError, match=r"p99 [\d.]+ ms \(goal 1e-06 ms\)"):
        passed_exam(copy)
