"""The fleet on Ray: the same shifts as the local process backend, each robot a Ray task on a
local Ray instance, against the real update server. Episodes are cut to 40 control steps."""

import httpx
import pytest

from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import ServerThread, create_app
from academy.fleet.robot import Order, RobotConfig, run_fleet

from fleethelp import start_rollout

STEPS = 40


def test_a_fleet_works_its_shifts_as_ray_tasks(fleet_home, tmp_path):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()  # run_fleet starts its own local instance and shuts it down
    with ServerThread(create_app(fleet_home.home)) as srv:
        # the rollout only delivers release 1 here: a safety stop (some runs have one in these 40-step
        # episodes) must not abort it before the third robot installs, so stops are judged by rate,
        # which with every robot let in (no baseline) never aborts
        start_rollout(srv.url, 1)
        serials = ["AH1-3121", "AH1-3122", "AH1-3123"]
        orders = {s: [Order("handover", 10 * i + k) for k in range(2)] for i, s in enumerate(serials)}
        seen = []
        try:
            out = run_fleet(tmp_path / "fleet", serials, orders, srv.url,
                            config=RobotConfig(max_episode_steps=STEPS, self_test_steps=10),
                            trusted_root=fleet_home.signing.trusted_root(), workers=2,
                            on_robot=lambda s: seen.append(s["serial"]), backend="ray")
        finally:
            if ray.is_initialized():  # only if run_fleet failed to shut down the instance it started
                ray.shutdown()
        assert not ray.is_initialized()
        assert sorted(seen) == serials  # on_robot once per robot, as each finished
        assert [s["serial"] for s in out] == serials
        for s in out:
            assert s["episodes"] == 2 and s["releases"] == {1: [s["successes"], 2]}
            assert s["installs"] == [[1, "committed"]] and 0 < s["control_steps"] <= 2 * STEPS
            up = s["upload"]  # every episode, event and report sent; nothing refused or left in the spool
            assert up["sent"] > 2 and (up["rejected"], up["left"], up["error"]) == (0, 0, "")
        # the robots' state is on disk where the local backend keeps it: the next shift goes on from it
        assert all((tmp_path / "fleet" / s / "runtime.json").exists() for s in serials)
        robots = {r["serial"]: r for r in httpx.get(f"{srv.url}/v1/robots").json()}
        assert {s: robots[s]["installed_release"] for s in serials} == dict.fromkeys(serials, 1)
        assert httpx.get(f"{srv.url}/v1/telemetry").json()["inbox"] == 6  # every episode uploaded, once
        shifts = [h for h in FleetDB(fleet_home.db_url).health() if h.kind == "shift" and h.serial in serials]
        assert sorted(h.serial for h in shifts for _ in range(h.episodes)) == sorted(serials * 2)


def test_an_unknown_backend_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="backend must be one of local, ray, got 'dask'"):
        run_fleet(tmp_path, ["AH1-3124"], {"AH1-3124": [Order("handover", 0)]}, "http://127.0.0.1:9", backend="dask")
