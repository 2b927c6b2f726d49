"""End to end on physics robots: a release that is worse on reality robots is stopped at the
canary cohort and rolled back, with no one's hand on it.

Two real handover policies are shipped in tests/assets/policies (weights, config and
normalisation; the exports are made here): ``handover-enc`` learned from demonstrations recorded
under randomized encoder offsets, ``handover-plain`` from the same recipe without them. Both pass
an exam in simulation; on reality robots the plain one fails far more often. The fleet is ten
reality robots (serials outside the held-out set), each with its real update agent. They run
shifts of handover episodes with the bundle they have committed, under its safety limits, and
report them to the real update server.

Both policies stop now and then on reality robots (a wrist at its end stop, the hands into
each other), so the rollouts judge safety stops by rate against the robots not yet updated
(``safety_stops="rate"``), not at the first one.
"""

import json
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import httpx
from academy.deploy.agent import Agent, Transport, default_boot_check
from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import ServerThread, create_app
from academy.exam.exam import ExamConfig, run_exam
from academy.exam.safety import SafetyLimits
from academy.fleet.shift import ShiftReport, run_shift
from academy.release.publish import ReleaseHome

PROFILE = "ah1-sim"
FLEET = [f"AH1-{n}" for n in range(2101, 2111)]
SHIFT = 5  # episodes per robot per shift
MIN_EPISODES = 20  # on each side before the rollout judges task success and safety stops


def shift_job(args):
    root, serial, seeds, usage = args
    return run_shift(Path(root) / "current", serial, seeds, usage_steps=usage).to_dict()


class Fleet:
    def __init__(self, home: ReleaseHome, url: str, root: Path):
        self.http = httpx.Client(base_url=url, timeout=60)
        self.agents, self.usage, self.seed = {}, dict.fromkeys(FLEET, 0), 0
        boot = partial(default_boot_check, self_test_steps=20)
        for serial in FLEET:
            Agent.provision(root / serial, home.signing.trusted_root())
            self.agents[serial] = Agent(root / serial, serial, PROFILE, Transport(url), boot_check=boot)

    def dock(self, serials=FLEET) -> dict[str, int]:
        """The robots charge: each agent checks in and installs what it is offered."""
        for s in serials:
            assert self.agents[s].run_until_idle(charging=True) == "idle"
        return {s: self.agents[s].st.committed_release for s in serials}

    def work(self, pool, serials) -> list[dict]:
        jobs = []
        for s in serials:
            jobs.append((str(self.agents[s].root), s, list(range(self.seed, self.seed + SHIFT)), self.usage[s]))
            self.seed += SHIFT
        reports = list(pool.map(shift_job, jobs))
        for r in reports:
            self.usage[r["serial"]] = r["usage_steps"]
            self.http.post("/v1/health", json=ShiftReport(**r).health()).raise_for_status()
        return reports

    def rollout(self, release: int, **settings) -> dict:
        r = self.http.post("/v1/rollouts", json={"release": release, "profile": PROFILE, **settings})
        r.raise_for_status()
        return r.json()

    def status(self, rid: int) -> dict:
        return self.http.get(f"/v1/rollouts/{rid}").json()


def test_a_release_worse_on_reality_robots_is_stopped_at_the_canary_and_rolled_back(tmp_path, shipped_policies):
    home = ReleaseHome(tmp_path / "home")
    home.init()
    # simulation only (the fleet is the test), with a stop only past a joint's end: both policies work
    # the wrist roll 20 mrad from its stop, as the experts they learned from do (docs/deploy.md)
    exam = ExamConfig(episodes=8, reality_episodes=0, latency_calls=200, limits=SafetyLimits(joint_limit_margin=0.0))
    for name in ("handover-enc", "handover-plain"):
        policy = shipped_policies[name]
        pub = home.publish(str(policy), run_exam(str(policy), ["handover"], exam))  # the gate passes both
    assert pub.release == 2
    with ServerThread(create_app(home.home)) as srv, ProcessPoolExecutor(2) as pool:
        fleet = Fleet(home, srv.url, tmp_path / "robots")
        # release 1 reaches the whole fleet at once; its shifts are the baseline for what follows
        first = fleet.rollout(1, canary_share=1.0, min_episodes=MIN_EPISODES, safety_stops="rate")
        assert set(fleet.dock().values()) == {1}
        baseline = fleet.work(pool, FLEET)
        assert fleet.status(first["id"])["state"] == "done"
        # release 2: a canary of one robot, which works shifts until the controller decides
        second = fleet.rollout(2, min_episodes=MIN_EPISODES, safety_stops="rate")
        assert len(second["let_in"]) == 1
        canary = second["let_in"][0]
        assert fleet.dock() == {s: 2 if s == canary else 1 for s in FLEET}
        canary_reports = []
        for _ in range(8):
            canary_reports += fleet.work(pool, [canary])
            st = fleet.status(second["id"])
            if st["state"] != "running":
                break
        print("baseline (release 1):", [(r["serial"], r["successes"], r["safety_stops"]) for r in baseline])
        print("canary (release 2):", [(r["successes"], r["episodes"], r["safety_stops"]) for r in canary_reports])
        print("rollout:", st["state"], st["reason"])
        assert st["state"] == "aborted" and st["cohort"] == 0
        assert "task success of updated robots" in st["reason"] or "safety stops of updated robots" in st["reason"]
        assert st["rollback_release"] == 3
        # the rollback reaches the canary at its next dock; no other robot ever ran release 2
        assert fleet.dock() == {s: 3 if s == canary else 1 for s in FLEET}
        slot = fleet.agents[canary].running()[1]
        r1 = json.loads((home.bundle_dir(1) / "manifest.json").read_text())["files"]
        r3 = json.loads((slot / "manifest.json").read_text())["files"]
        assert {k: v["sha256"] for k, v in r3.items() if k.startswith("policy/")} == \
               {k: v["sha256"] for k, v in r1.items() if k.startswith("policy/")}  # release 1's weights
        installed_2 = {h.serial for h in FleetDB(home.db_url).health(2) if h.kind == "install" and h.ok}
        assert installed_2 == {canary}
