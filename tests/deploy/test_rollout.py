"""The rollout controller through the real update server, with lightweight robots (no physics:
they check in and report health over HTTP as agents and fleet shifts do)."""

import httpx
import pytest

from academy.deploy.rollout import cohort_bounds
from academy.deploy.server import ServerThread, create_app
from academy.release.publish import ReleaseHome

PROFILE = "ah1-cm3"


@pytest.fixture()
def server(deploy_home, tmp_path):
    """A fresh release home with releases 1 and 2 (the deploy fixture's first two policies)."""
    home = ReleaseHome(tmp_path / "home")
    home.init()
    for n in (1, 2):
        home.publish(str(deploy_home.bundle_dir(n) / "policy"), deploy_home.registry.get(n)["exam"])
    with ServerThread(create_app(home.home)) as srv:
        srv.home = srv_home = home
        srv.http = httpx.Client(base_url=srv.url, timeout=30)
        yield srv
    del srv_home


def checkin(srv, serial, installed, profile=PROFILE):
    r = srv.http.post("/v1/checkin", json={"serial": serial, "profile": profile, "installed_release": installed})
    r.raise_for_status()
    return r.json()["release"]


def health(srv, serial, release, kind, ok=True, episodes=0, successes=0, safety_stops=0, detail=""):
    srv.http.post("/v1/health", json={"serial": serial, "release": release, "kind": kind, "ok": ok, "episodes": episodes,
                                      "successes": successes, "safety_stops": safety_stops, "detail": detail}).raise_for_status()


def fleet_of(srv, n, release=1):
    serials = [f"AH1-{i:04d}" for i in range(n)]
    for s in serials:
        assert checkin(srv, s, release) is None  # no rollout yet: nothing is offered
    return serials


def test_cohort_bounds():
    assert cohort_bounds(20, 0.1, 2.0) == [2, 4, 8, 16, 20]
    assert cohort_bounds(1000, 0.1, 2.0) == [100, 200, 400, 800, 1000]
    assert cohort_bounds(3, 0.1, 2.0) == [1, 2, 3]
    assert cohort_bounds(0, 0.1, 2.0) == [0]


def install_and_work(srv, serials, release, successes, episodes=10):
    for s in serials:
        assert checkin(srv, s, release - 1 if release > 1 else 0) in (release, None)
        health(srv, s, release, "install")
        checkin(srv, s, release)
        health(srv, s, release, "shift", episodes=episodes, successes=successes)


def test_a_healthy_release_grows_cohort_by_cohort_to_the_whole_fleet(server):
    serials = fleet_of(server, 20)
    st = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "min_episodes": 20}).json()
    assert st["bounds"] == [2, 4, 8, 16, 20] and st["previous"] == 1 and len(st["let_in"]) == 2
    offered = [s for s in serials if checkin(server, s, 1) == 2]
    assert sorted(offered) == st["let_in"]  # only the canary
    for s in set(serials) - set(offered):
        health(server, s, 1, "shift", episodes=10, successes=8)  # the rest of the fleet at work on release 1
    cohorts = []
    for _ in range(10):
        st = server.http.get(f"/v1/rollouts/{st['id']}").json()
        if st["state"] == "done":
            break
        cohorts.append(len(st["let_in"]))
        install_and_work(server, [s for s in st["let_in"] if s not in st["installed"]], 2, successes=8)
    assert cohorts == [2, 4, 8, 16, 20] and st["state"] == "done"
    assert all(checkin(server, s, 1) == 2 for s in serials)


def test_a_release_that_lowers_success_stops_at_the_canary_and_is_rolled_back(server):
    serials = fleet_of(server, 20)
    st = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE}).json()
    for s in set(serials) - set(st["let_in"]):
        health(server, s, 1, "shift", episodes=10, successes=9)
    install_and_work(server, st["let_in"], 2, successes=2)  # 4/20 against 162/180
    st = server.http.get(f"/v1/rollouts/{st['id']}").json()
    assert st["state"] == "aborted" and "task success of updated robots 4/20" in st["reason"]
    assert st["cohort"] == 0 and st["rollback_release"] == 3
    rollback = server.home.registry.get(3)
    assert rollback["gate"]["rollback_of"] == 1 and rollback["policy_sha256"] == server.home.registry.get(1)["policy_sha256"]
    for s in serials:  # the canary gets the rollback release; the rest keep release 1
        assert checkin(server, s, 2 if s in st["let_in"] else 1) == (3 if s in st["let_in"] else None)
    r = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE})
    assert r.status_code == 409 and "release 2 was aborted in rollout" in r.json()["detail"]


@pytest.mark.parametrize("report, reason", [
    (dict(kind="install", ok=False, detail="inference p99 12 ms is over the ah1-cm3 budget"), "install(s) failed"),
    (dict(kind="shift", ok=True, episodes=5, successes=5, safety_stops=1), "safety stop"),
    (dict(kind="shift", ok=False, episodes=1, successes=0, detail="runtime fault"), "failed health checks"),
])
def test_install_failures_safety_stops_and_failed_health_checks_abort(server, report, reason):
    fleet_of(server, 10)
    st = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE}).json()
    health(server, st["let_in"][0], 2, **report)
    st = server.http.get(f"/v1/rollouts/{st['id']}").json()
    assert st["state"] == "aborted" and reason in st["reason"]


@pytest.mark.parametrize("canary_stops, aborted", [(6, False), (15, True)])
def test_safety_stops_by_rate_against_a_fleet_that_already_stops(server, canary_stops, aborted):
    serials = fleet_of(server, 10)
    st = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "safety_stops": "rate"}).json()
    canary = st["let_in"][0]
    for s in serials:
        if s != canary:
            health(server, s, 1, "shift", episodes=10, successes=5, safety_stops=3)  # 27 stops in 90 episodes
    checkin(server, canary, 1)
    health(server, canary, 2, "install")
    health(server, canary, 2, "shift", episodes=20, successes=10, safety_stops=canary_stops)
    st = server.http.get(f"/v1/rollouts/{st['id']}").json()
    assert st["updated_safety_stops"] == canary_stops
    if aborted:  # 15/20 against 27/90: above by more than the margin
        assert st["state"] == "aborted" and "safety stops of updated robots 15/20" in st["reason"]
        assert st["baseline_safety_stops"] == 27
    else:  # 6/20 against 27/90: the same rate; the canary's cohort is complete and the next let in
        assert st["state"] == "running" and st["cohort"] == 1 and not st["abort_reason"]
        assert st["baseline_safety_stops"] == 24  # the robot let in next no longer counts as baseline


def test_pause_resume_abort_and_bad_requests(server):
    serials = fleet_of(server, 10)
    r = server.http.post("/v1/rollouts", json={"release": 2, "profile": "ah1-cm9"})
    assert r.status_code == 409 and "does not fit ah1-cm9" in r.json()["detail"]
    r = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "canary": 0.5})
    assert r.status_code == 422 and "canary" in r.json()["detail"]
    r = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "growth": 0.5})
    assert r.status_code == 422 and "growth must be above 1" in r.json()["detail"]
    st = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "min_episodes": 5}).json()
    r = server.http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE})
    assert r.status_code == 409 and "still running" in r.json()["detail"]
    assert server.http.post(f"/v1/rollouts/{st['id']}/pause").json()["state"] == "paused"
    install_and_work(server, st["let_in"], 2, successes=9)
    for s in set(serials) - set(st["let_in"]):
        health(server, s, 1, "shift", episodes=10, successes=9)
    assert server.http.get(f"/v1/rollouts/{st['id']}").json()["cohort"] == 0  # paused: no growth
    assert server.http.post(f"/v1/rollouts/{st['id']}/resume").json()["state"] == "running"
    health(server, st["let_in"][0], 2, "shift", episodes=1, successes=1)  # the next report moves it
    assert server.http.get(f"/v1/rollouts/{st['id']}").json()["cohort"] == 1
    r = server.http.post(f"/v1/rollouts/{st['id']}/abort").json()
    assert r["state"] == "aborted" and r["reason"] == "aborted by an operator" and r["rollback_release"] == 3
    assert server.http.post(f"/v1/rollouts/{st['id']}/resume").status_code == 409
    assert server.http.post(f"/v1/rollouts/{st['id']}/explode").status_code == 409
    assert server.http.get("/v1/rollouts/99").status_code == 409


def test_rollout_command_line(server):
    from typer.testing import CliRunner

    from academy.cli import app

    fleet_of(server, 5)
    run = CliRunner().invoke
    r = run(app, ["rollout", "create", "--release", "2", "--profile", PROFILE, "--server", server.url])
    assert r.exit_code == 0 and "rollout 1: release 2 (from 1) to ah1-cm3: running" in r.output, r.output
    r = run(app, ["rollout", "pause", "1", "--server", server.url])
    assert r.exit_code == 0 and "paused" in r.output
    r = run(app, ["rollout", "pause", "1", "--server", server.url])
    assert r.exit_code == 1 and "is paused, not running" in r.output
    r = run(app, ["rollout", "status", "--server", server.url])
    assert r.exit_code == 0 and "cohort 1 of" in r.output
    r = run(app, ["rollout", "status", "--server", "http://127.0.0.1:9"])
    assert r.exit_code != 0 and "did not answer" in r.output
