import json

import numpy as np
import pytest

from academy.exam.exam import ExamConfig, run_exam, scenes
from academy.exam.gate import drop_test, gate, min_detectable_drop, newly_mastered, restricted_mle
from academy.exam.profiles import PROFILES, HardwareProfile, measure_inference, profile
from academy.exam.safety import KINDS, SafetyLimits, summarize
from academy.sim import robot
from academy.sim.env import WorkcellEnv
from academy.sim.experts.ik import ArmIK, yaw_down_quat
from academy.sim.rollout_expert import make_env, rollout
from academy.sim.experts import make_expert
from academy.sim.world import load_model


# ---------------------------------------------------------------- safety monitor on known cases
def hold(targets: dict, steps: int = 20, limits: SafetyLimits = SafetyLimits(), joints: dict = {}) -> dict:
    """Drive the arms to grasp-site positions (by IK) or joints to values and hold them."""
    env = WorkcellEnv("handover")
    env.enable_safety(limits)
    env.reset(0)
    q = np.array(robot.HOME, float)
    for side, pos in targets.items():
        ik = ArmIK(env.model, side)
        for _ in range(10):
            sol, _ = ik.solve(q, np.array(pos), yaw_down_quat(0.0), iterations=20)
            q[ik.index] = sol
    for name, value in joints.items():
        q[robot.JOINTS.index(name)] = value
    for _ in range(steps):
        env.step(q)
    return env.safety_log()[-1]


def test_pressing_into_the_bench_is_over_the_force_and_torque_limits():
    ep = hold({"right": [0.35, -0.15, 0.80]})  # 10 cm below the bench top
    assert ep["contact_force"] > 0 and ep["worst"]["contact_force"] > 150
    assert ep["torque"] > 0
    assert ep["self_collision"] == 0 and ep["zone_speed"] == 0


def test_hands_driven_into_each_other_are_a_self_collision():
    ep = hold({"right": [0.33, 0.0, 1.05], "left": [0.33, 0.0, 1.05]})
    assert ep["self_collision"] > 0 and ep["worst"]["self_collision"] > 0.005


def test_a_joint_held_at_its_stop_is_a_joint_limit_hit():
    ep = hold({}, joints={"right_elbow": -2.6})
    assert ep["joint_limit"] > 10
    assert hold({})["joint_limit"] == 0  # home is clear of every stop


def test_fast_hands_inside_the_person_zone_are_counted():
    # a zone around the whole work area with a slow limit: the expert's reaches (up to 0.9 m/s) cross it
    limits = SafetyLimits(zone_min=(0.0, -0.6, 0.9), zone_max=(0.8, 0.6, 1.6), zone_speed=0.05)
    env = make_env("handover")
    env.enable_safety(limits)
    rollout(env, make_expert("handover"), 0)
    assert env.safety_log()[-1]["zone_speed"] > 0
    assert env.safety_log()[-1]["worst"]["zone_speed"] > 0.3


@pytest.mark.parametrize("task", ["handover", "place_part", "sort_cells"])
def test_the_scripted_experts_keep_every_default_limit(task):
    env = make_env(task)
    env.enable_safety()
    for seed in range(2):
        assert rollout(env, make_expert(task), seed).success
    log = env.safety_log()
    totals = summarize(log)
    assert len(log) == 2
    assert {k: totals[k] for k in KINDS} == dict.fromkeys(KINDS, 0)


def test_a_reality_robot_reports_safety_counts_only():
    r = make_env("handover", serial="AH1-9001")
    with pytest.raises(RuntimeError, match="enable_safety"):
        r.safety_log()
    r.enable_safety()
    r.reset(0)
    for _ in range(5):
        r.step(np.array(robot.HOME))
    r.set_task("place_part")  # the monitor stays on across a task change
    r.reset(1)
    r.step(np.array(robot.HOME))
    log = r.safety_log()
    assert [e["steps"] for e in log] == [5, 1]
    assert set(log[0]) == {"steps", "worst", *KINDS}


def test_person_zone_site_marks_the_default_zone():
    m = load_model()
    site = m.site("person_zone")
    lo, hi = site.pos - site.size, site.pos + site.size
    limits = SafetyLimits()
    assert np.allclose(lo, limits.zone_min) and np.allclose(hi, limits.zone_max)


def test_safety_limits_round_trip_and_unknown_names_are_refused():
    limits = SafetyLimits(contact_force=120.0)
    assert SafetyLimits.from_dict(json.loads(json.dumps(limits.to_dict()))) == limits
    with pytest.raises(ValueError, match="unknown safety limit.*'max_speed'"):
        SafetyLimits.from_dict({"max_speed": 1.0})


# ---------------------------------------------------------------- the one-sided test
def test_restricted_mle_matches_a_brute_force_maximum():
    for x1, n1, x2, n2, d in [(20, 24, 15, 24, 0.05), (5, 30, 9, 20, 0.1), (24, 24, 0, 24, 0.05)]:
        p1 = np.linspace(d, 1, 100001)[1:-1]
        p2 = p1 - d
        ll = x1 * np.log(p1) + (n1 - x1) * np.log(1 - p1) + x2 * np.log(np.clip(p2, 1e-300, 1)) + (n2 - x2) * np.log(1 - p2)
        best = p1[np.argmax(ll)]
        r1, r2 = restricted_mle(x1, n1, x2, n2, d)
        assert abs(r1 - best) < 1e-4 and abs(r1 - r2 - d) < 1e-12


def test_drop_test_refuses_large_drops_and_not_noise():
    assert drop_test(22, 24, 10, 24, 0.05)[1] < 0.01  # 92% -> 42%
    assert drop_test(22, 24, 20, 24, 0.05)[1] > 0.3  # 92% -> 83%: within what 24 scenes can tell
    assert drop_test(20, 24, 23, 24, 0.05)[1] > 0.9  # a gain
    # more scenes resolve smaller drops
    assert min_detectable_drop(0.9, 100) < min_detectable_drop(0.9, 32) < min_detectable_drop(0.9, 16)


def report(skills: dict, fits=("ah1-cm3",)) -> dict:
    out = {"policy": "p", "config": {}, "skills": {}, "inference": {"p99_ms": 1.0, "peak_rss_mb": 300, "fits": list(fits)}}
    for name, (nom, real, safety) in skills.items():
        out["skills"][name] = {"missing": False, "nominal": {"successes": nom[0], "episodes": nom[1]},
                               "reality": {"successes": real[0], "episodes": real[1]}, "episode_seconds": 9.0,
                               "safety": {**dict.fromkeys(KINDS, 0), **safety, "worst": {}}}
    return out


def test_gate_names_the_skill_the_drop_and_the_evidence():
    current = report({"handover": ((23, 24), (8, 16), {}), "place_part": ((20, 24), (4, 16), {})})
    same = report({"handover": ((22, 24), (8, 16), {}), "place_part": ((19, 24), (5, 16), {})})
    assert gate(same, current, ["handover", "place_part"]).passed
    worse = report({"handover": ((22, 24), (8, 16), {}), "place_part": ((6, 24), (4, 16), {})})
    d = gate(worse, current, ["handover", "place_part"], current_name="release 3")
    assert not d.passed and len(d.reasons) == 1
    assert "place_part: nominal success dropped from 20/24 (release 3) to 6/24" in d.reasons[0]
    assert "p = " in d.reasons[0] and d.skills["place_part"]["nominal"]["p"] < 0.05


def test_gate_refuses_safety_a_lost_skill_and_a_policy_no_robot_can_run():
    current = report({"handover": ((23, 24), (8, 16), {})})
    unsafe = report({"handover": ((23, 24), (8, 16), {"self_collision": 3})})
    d = gate(unsafe, current, ["handover"])
    assert not d.passed and "handover: safety limit 'self_collision' crossed on 3 control steps" in d.reasons[0]
    forgot = report({"place_part": ((20, 24), (4, 16), {})})
    d = gate(forgot, current, ["handover"])
    assert not d.passed and any("handover: mastered before" in r for r in d.reasons)
    slow = report({"handover": ((23, 24), (8, 16), {})}, fits=())
    assert any("fits no hardware profile" in r for r in gate(slow, current, ["handover"]).reasons)
    assert gate(report({"handover": ((3, 24), (0, 16), {})}), None).passed  # a first release: nothing to drop from


def test_mastery_needs_the_rate_and_enough_scenes():
    r = report({"handover": ((22, 24), (8, 16), {}), "place_part": ((5, 24), (0, 16), {}), "sort_cells": ((2, 2), (0, 0), {})})
    assert newly_mastered(r) == ["handover"]


# ---------------------------------------------------------------- hardware profiles and the exam itself
def test_profiles_are_named_and_fit_by_budget():
    assert set(PROFILES) == {"ah1-cm3", "ah1-cm5", "ah1-sim"}
    with pytest.raises(ValueError, match="unknown hardware profile 'cm9'"):
        profile("cm9")
    p = HardwareProfile("x", "", latency_p99_ms=2.0, memory_mb=500)
    assert p.fits({"p99_ms": 1.5, "peak_rss_mb": 400}) and not p.fits({"p99_ms": 2.5, "peak_rss_mb": 400})
    assert not p.fits({"p99_ms": 1.5, "peak_rss_mb": 600})


def test_measure_inference_in_a_fresh_process(tiny_policy):
    m = measure_inference(tiny_policy, calls=200)
    assert 0 < m["p50_ms"] <= m["p99_ms"] and m["peak_rss_mb"] > 50 and m["calls"] == 200
    assert m["fits"] == [n for n, p in PROFILES.items() if p.fits(m)]


def test_exam_scenes_are_fixed_and_spread_over_the_robots():
    cfg = ExamConfig(episodes=3, reality_episodes=10)
    s = scenes(["handover"], cfg)
    assert s == scenes(["handover"], cfg)
    assert [x[2] for x in s[:3]] == [300000, 300001, 300002]
    real = [x for x in s if x[1]]
    assert len(real) == 10 and len({x[1] for x in real}) == 8


def test_exam_of_the_expert_counts_success_time_and_safety():
    r = run_exam("expert", ["place_part"], ExamConfig(episodes=2, reality_episodes=1, workers=2))
    s = r["skills"]["place_part"]
    assert s["nominal"] == {"successes": 2, "episodes": 2} and s["reality"]["episodes"] == 1
    assert 3.0 < s["episode_seconds"] < 12.0
    assert s["safety"]["steps"] == sum(e["steps"] for e in r["episodes"])
    assert len(r["episodes"]) == 3 and "inference" not in r


def test_exam_of_a_policy_fails_the_skills_it_lacks(tiny_policy):
    r = run_exam(str(tiny_policy), ["handover", "place_part"], ExamConfig(episodes=1, reality_episodes=0, latency_calls=50))
    assert r["skills"]["place_part"]["missing"] and r["skills"]["place_part"]["nominal"] == {"successes": 0, "episodes": 1}
    assert not r["skills"]["handover"]["missing"] and r["skills"]["handover"]["nominal"]["episodes"] == 1
    assert r["policy_sha256"] and r["inference"]["calls"] == 50
    with pytest.raises(ValueError, match="unknown skill"):
        run_exam(str(tiny_policy), ["juggle"])
