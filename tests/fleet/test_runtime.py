"""The robot runtime: a shift of orders on a reality robot with its real update agent, against
the real update server. Episodes are cut to 40 control steps to keep the tests short."""

import json

import httpx
import numpy as np
import pytest

from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import ServerThread, create_app
from academy.exam.safety import SafetyLimits
from academy.fleet.robot import FleetRobot, Order, RobotConfig, run_episode
from academy.learn.policy import Policy
from academy.sim.reality import RealityRobot

from fleethelp import PROFILE, start_rollout

STEPS = 40


def robot(home, url, serial, tmp_path, **cfg) -> FleetRobot:
    return FleetRobot(tmp_path / "robots" / serial, serial, PROFILE, url,
                      RobotConfig(max_episode_steps=STEPS, self_test_steps=10, **cfg),
                      trusted_root=home.signing.trusted_root())


def test_the_control_loop_counts_every_step_over_its_deadline(shipped_policies):
    policy = Policy.load(shipped_policies["handover-enc"])
    bot = RealityRobot("AH1-3100", "handover")
    tight = run_episode(bot, policy, 0, SafetyLimits(joint_limit_margin=0.0), deadline_ms=1e-4, max_steps=STEPS)
    loose = run_episode(bot, policy, 0, SafetyLimits(joint_limit_margin=0.0), deadline_ms=1e6, max_steps=STEPS)
    assert tight.steps == STEPS and tight.deadline_misses == STEPS  # no control step takes 0.1 us
    assert loose.deadline_misses == 0
    assert len(tight.step_ms) == STEPS and min(tight.step_ms) > 0
    assert bot.usage_steps == 2 * STEPS  # wear counts every step


def test_a_shift_docks_on_a_low_battery_and_installs_only_on_the_charger(fleet_home, tmp_path):
    with ServerThread(create_app(fleet_home.home)) as srv:
        start_rollout(srv.url, 1)
        # a full charge lasts about 2.5 episodes of 40 steps, so the robot docks in the middle of its shift
        bot = robot(fleet_home, srv.url, "AH1-3101", tmp_path, battery_steps=100)
        first = bot.work([Order("handover", 0)])
        assert first.docks == 1 and first.installs == [[1, "committed"]]  # a new robot docks for its first release
        assert first.releases == {1: [first.successes, 1]}
        start_rollout(srv.url, 2)
        seen = []
        summary = bot.work([Order("handover", s) for s in range(1, 7)],
                           on_episode=lambda ep: seen.append((bot.agent.st.committed_release, bot.agent.st.state)))
        # release 2 was downloaded at the first check-in of the shift, waited for the charger, then installed
        assert seen[0] == (1, "wait_for_charging")
        assert summary.docks >= 1 and summary.installs == [[2, "committed"]]
        switch = [r for r, _ in seen].index(2)
        assert 0 < switch < len(seen) and all(r == 1 for r, _ in seen[:switch]) and all(r == 2 for r, _ in seen[switch:])
        assert set(summary.releases) == {1, 2} and sum(n for _, n in summary.releases.values()) == 6
        assert summary.control_steps <= 6 * STEPS and summary.wear_steps == bot.rs.usage_steps > summary.control_steps
        assert summary.upload["left"] == 0 and summary.upload["error"] == ""
        db = FleetDB(fleet_home.db_url)
        events = db.events(serial="AH1-3101")
        kinds = [e.kind for e in events]
        assert kinds.count("install") == 2 and kinds.count("dock") == 1 + summary.docks
        assert [e.release for e in events if e.kind == "install"] == [1, 2]
        shifts = [h for h in db.health() if h.kind == "shift" and h.serial == "AH1-3101"]
        assert sum(h.episodes for h in shifts) == 7 and all(h.key for h in shifts)
        counts = httpx.get(f"{srv.url}/v1/telemetry").json()
        assert counts["inbox"] == 7  # every episode uploaded, once


def test_a_shadow_period_within_its_bound_clears_the_cohort_to_install(fleet_home, tmp_path):
    with ServerThread(create_app(fleet_home.home)) as srv:
        start_rollout(srv.url, 1)
        bot = robot(fleet_home, srv.url, "AH1-3102", tmp_path)
        bot.work([Order("handover", 0)])
        ro = start_rollout(srv.url, 2, shadow_steps=2 * STEPS, shadow_divergence=0.5)
        summary = bot.work([Order("handover", s) for s in range(1, 4)])
        # the candidate ran beside release 1 on the same observations, never acting, judged on a twin
        assert summary.releases == {1: [summary.successes, 3]} and summary.installs == []
        sh = summary.shadow[2]  # two episodes reach the required steps; a third if the clearance came late
        assert sh["steps"] in (2 * STEPS, 3 * STEPS) and sh["judged"] == sh["steps"] // STEPS
        assert 0 < sh["divergence_sum"] / sh["steps"] < 0.5
        st = httpx.get(f"{srv.url}/v1/rollouts/{ro['id']}").json()
        assert st["shadow"]["cleared"] and st["shadow"]["would_be_success"][1] == sh["judged"]
        assert st["shadow"]["max_divergence"] > 0
        bot.dock()  # the cohort is out of shadow: the next charger installs
        assert bot.agent.st.committed_release == 2
        shadows = [h for h in FleetDB(fleet_home.db_url).health(2) if h.kind == "shadow"]
        assert len(shadows) == sh["judged"] and sum(h.steps for h in shadows) == sh["steps"]


def test_a_shadow_diverging_past_its_bound_aborts_the_rollout_before_any_install(fleet_home, tmp_path):
    with ServerThread(create_app(fleet_home.home)) as srv:
        start_rollout(srv.url, 1)
        bot = robot(fleet_home, srv.url, "AH1-3103", tmp_path)
        bot.work([Order("handover", 0)])
        ro = start_rollout(srv.url, 2, shadow_steps=10 * STEPS, shadow_divergence=1e-4)
        bot.work([Order("handover", 1), Order("handover", 2)])
        st = httpx.get(f"{srv.url}/v1/rollouts/{ro['id']}").json()
        assert st["state"] == "aborted" and "shadow divergence on ['AH1-3103']" in st["reason"]
        bot.dock()
        assert bot.agent.st.committed_release == 1  # release 2 never installed anywhere
        assert not [h for h in FleetDB(fleet_home.db_url).health(2) if h.kind == "install"]
        assert bot._shadow is None  # the server no longer asks for it


def test_a_shift_refuses_an_order_its_release_cannot_do(fleet_home, tmp_path):
    with ServerThread(create_app(fleet_home.home)) as srv:
        start_rollout(srv.url, 1)
        bot = robot(fleet_home, srv.url, "AH1-3104", tmp_path)
        with pytest.raises(ValueError, match="release 1 has no skill 'place_part'"):
            bot.work([Order("place_part", 0)])
    with pytest.raises(RuntimeError, match="no release installed"):
        robot(fleet_home, "http://127.0.0.1:9", "AH1-3105", tmp_path).work([Order("handover", 0)])


def test_a_fleet_works_its_shifts_in_parallel_processes(fleet_home, tmp_path):
    from academy.fleet.robot import run_fleet

    with ServerThread(create_app(fleet_home.home)) as srv:
        start_rollout(srv.url, 1)
        serials = ["AH1-3111", "AH1-3112", "AH1-3113"]
        orders = {s: [Order("handover", 10 * i + k) for k in range(2)] for i, s in enumerate(serials)}
        out = run_fleet(tmp_path / "fleet", serials, orders, srv.url, config=RobotConfig(max_episode_steps=STEPS,
                        self_test_steps=10), trusted_root=fleet_home.signing.trusted_root(), workers=2)
        assert [s["serial"] for s in out] == serials
        assert all(s["episodes"] == 2 and s["installs"] == [[1, "committed"]] and s["upload"]["left"] == 0 for s in out)
        robots = {r["serial"]: r for r in httpx.get(f"{srv.url}/v1/robots").json()}
        assert {s: robots[s]["installed_release"] for s in serials} == dict.fromkeys(serials, 1)
        assert httpx.get(f"{srv.url}/v1/telemetry").json()["inbox"] == 6
