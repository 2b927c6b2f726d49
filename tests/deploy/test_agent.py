import asyncio
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from starlette.responses import Response, StreamingResponse

from academy.deploy.agent import Agent, Transport, default_boot_check
from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import ServerThread, create_app
from academy.release.bundle import verify_bundle

PROFILE = "ah1-sim"

SERIAL = "AH1-0001"


class Fleet:
    """The real update server, told per robot what to offer, and able to misbehave on request."""

    def __init__(self, home):
        self.home = home
        self.offer: dict[str, int] = {}
        self.override: dict[str, object] = {}  # URL path -> bytes to serve instead, or "endless"
        self.chunk_requests = 0
        app = create_app(home.home, home.db_url, target_release=lambda robot: self.offer.get(robot.serial))

        @app.middleware("http")
        async def misbehave(request, call_next):
            path = request.url.path
            if path.startswith("/chunks/"):
                self.chunk_requests += 1
            if path in self.override:
                body = self.override[path]
                if body == "endless":  # far more than any chunk (bounded, so the test server stops)
                    async def endless():
                        for _ in range(4096):
                            yield b"\0" * 65536
                            await asyncio.sleep(0)
                    return StreamingResponse(endless())
                return Response(body)
            return await call_next(request)

        self.server = ServerThread(app).start()
        self.url = self.server.url


@pytest.fixture(scope="module")
def fleet(deploy_home):
    f = Fleet(deploy_home)
    yield f
    f.server.stop()


def quick_boot(slot, profile):
    return default_boot_check(slot, profile, self_test_steps=10)


def robot(fleet, root, serial=SERIAL) -> Agent:
    if not (root / "state.json").exists():
        Agent.provision(root, fleet.home.signing.trusted_root())
    return Agent(root, serial, PROFILE, Transport(fleet.url), boot_check=quick_boot)


@pytest.fixture(scope="module")
def on_release_1(fleet, tmp_path_factory):
    """A robot folder with release 1 installed and committed (copied by each test)."""
    root = tmp_path_factory.mktemp("template") / "robot"
    fleet.offer["template"] = 1
    a = robot(fleet, root, "template")
    assert a.run_until_idle(charging=True) == "idle" and a.st.committed_release == 1
    return root


def copy_robot(template, dest):
    shutil.copytree(template, dest, symlinks=True)
    return dest


def test_install_waits_for_the_charger_and_ships_a_delta(fleet, on_release_1, tmp_path):
    a = robot(fleet, copy_robot(on_release_1, tmp_path / "r"))
    fleet.offer[SERIAL] = 2
    assert a.step(charging=False) == "download"
    before = fleet.chunk_requests
    assert a.step(charging=False) == "wait_for_charging"
    fetched = fleet.chunk_requests - before
    full = sum(len(f["chunks"]) for f in json.loads((fleet.home.bundle_dir(2) / "manifest.json").read_text())["files"].values())
    assert 0 < fetched < full / 2  # only what release 1 did not already bring
    for _ in range(5):  # off the charger: it waits, counts the deferral, and never installs
        assert a.step(charging=False) == "wait_for_charging"
    assert a.st.deferrals == 5 and a.running()[0] == 1
    robots = httpx.get(f"{fleet.url}/v1/robots").json()
    assert next(r for r in robots if r["serial"] == SERIAL)["slot_state"]["deferrals"] == 5
    assert a.run_until_idle(charging=True) == "idle"
    release, slot = a.running()
    assert release == 2 and a.st.committed_release == 2 and slot.name == "b"
    assert (slot / "policy" / "residual.pt").exists()
    reports = [h for h in FleetDB(fleet.home.db_url).health(2) if h.serial == SERIAL]
    assert reports[-1].kind == "install" and reports[-1].ok


def test_a_release_that_fails_to_boot_is_rolled_back(fleet, on_release_1, tmp_path):
    a = robot(fleet, copy_robot(on_release_1, tmp_path / "r"), serial="AH1-0002")
    fleet.offer["AH1-0002"] = 3  # its config does not match its weights
    assert a.run_until_idle(charging=True) == "idle"
    assert a.running()[0] == 1 and a.st.committed_release == 1
    assert "3" in a.st.rejected and "does not load" in a.st.rejected["3"]
    assert a.run_until_idle(charging=True) == "idle" and a.st.pending_release is None  # not retried
    reports = [h for h in FleetDB(fleet.home.db_url).health(3) if h.serial == "AH1-0002"]
    assert len(reports) == 1 and not reports[0].ok and "does not load" in reports[0].detail


def attempt(fleet, template, tmp_path, serial, release, **override):
    a = robot(fleet, copy_robot(template, tmp_path / serial), serial=serial)
    fleet.offer[serial] = release
    fleet.override.clear()
    fleet.override.update(override)
    try:
        a.run_until_idle(charging=True)
    finally:
        fleet.override.clear()
    return a


def manifest_url(home, release):
    info = home.signing.load("targets").signed.targets[f"bundles/{release}/manifest.json"]
    return f"/tuf/targets/bundles/{release}/{info.hashes['sha256']}.manifest.json"


def resigned(home, role, **changes) -> bytes:
    md = home.signing.load(role)
    for k, v in changes.items():
        setattr(md.signed, k, v)
    md.signatures.clear()
    md.sign(home.signing.signer(role))
    return md.to_bytes()


def test_attacks_are_rejected_and_the_robot_keeps_its_policy(fleet, on_release_1, tmp_path):
    home = fleet.home
    m2 = json.loads((home.bundle_dir(2) / "manifest.json").read_text())
    m1 = json.loads((home.bundle_dir(1) / "manifest.json").read_text())
    new_chunk = m2["files"]["policy/residual.pt"]["chunks"][0]
    old_chunk = m1["files"]["policy/weights.pt"]["chunks"][0]
    ts = home.signing.load("timestamp").signed
    cases = {
        "tampered target": ({manifest_url(home, 2): (home.bundle_dir(2) / "manifest.json").read_bytes().replace(b'"release": 2', b'"release": 2 ')}, "does not verify"),
        "rolled-back metadata": ({"/tuf/metadata/timestamp.json": resigned(home, "timestamp", version=ts.version - 1)}, "does not verify"),
        "expired timestamp": ({"/tuf/metadata/timestamp.json": resigned(home, "timestamp", version=ts.version + 1,
                                                                          expires=datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1))},
                              "does not verify"),
        "parts of another release": ({f"/chunks/{new_chunk}": (home.signing.chunks_dir / old_chunk[:2] / old_chunk).read_bytes()},
                                     "does not match the signed manifest"),
        "endless target": ({f"/chunks/{new_chunk}": "endless"}, "longer than the manifest's chunk size"),
    }
    for i, (name, (override, message)) in enumerate(cases.items()):
        a = attempt(fleet, on_release_1, tmp_path, f"AH1-01{i:02d}", 2, **override)
        assert a.running()[0] == 1 and a.st.committed_release == 1, name
        assert message in a.st.rejected.get("2", ""), (name, a.st.rejected)
    # another hardware profile's bundle
    a = attempt(fleet, on_release_1, tmp_path, "AH1-0200", 4)
    assert a.running()[0] == 1 and "['ah1-cm5'], not this robot's ah1-sim" in a.st.rejected["4"]
    # a downgrade: the server offers what the robot already passed; nothing is fetched
    a = attempt(fleet, on_release_1, tmp_path, "AH1-0201", 2)
    assert a.st.committed_release == 2
    before = fleet.chunk_requests
    fleet.offer["AH1-0201"] = 1
    assert a.run_until_idle(charging=True) == "idle" and a.st.committed_release == 2
    assert fleet.chunk_requests == before
    a.st.pending_release = 1
    with pytest.raises(Exception, match="not the pending 1 above the committed 2"):
        a.fetch_manifest(1)


# ---------------------------------------------------------------- kill -9 and power cuts
GOOD = ["download:chunk:half-written", "download:after-chunk", "download:to-wait:half-written",
        "wait:to-install:half-written", "install:before-assemble", "install:after-assemble",
        "install:to-verify:half-written", "verify:attempt:half-written", "verify:booting", "verify:to-commit:half-written",
        "commit:before-switch", "commit:after-switch", "commit:to-idle:half-written"]
BAD = ["verify:booting", "verify:to-rollback:half-written", "rollback:before-state", "rollback:to-idle:half-written"]
CASES = [(label, 2) for label in GOOD] + [(label, 3) for label in BAD]


def run_agent(fleet, root, serial, crash_at=None):
    env = {**os.environ, "MUJOCO_GL": "egl"}
    env.pop("ACADEMY_AGENT_CRASH_AT", None)
    if crash_at:
        env["ACADEMY_AGENT_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "academy.cli", "agent", "--root", str(root), "--serial", serial,
                           "--profile", PROFILE, "--server", fleet.url, "--charging", "--self-test-steps", "10"],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("label, release", CASES, ids=[f"{r}-{label}" for label, r in CASES])
def test_kill_9_anywhere_leaves_a_verified_policy(fleet, on_release_1, tmp_path, label, release):
    serial = f"AH1-K{CASES.index((label, release)):03d}"
    root = copy_robot(on_release_1, tmp_path / "r")
    fleet.offer[serial] = release
    first = run_agent(fleet, root, serial, crash_at=label)
    assert first.returncode == -9, (label, first.returncode, first.stdout[-2000:], first.stderr[-2000:])
    # on restart, before anything else: the robot runs a verified policy
    a = Agent(root, serial, PROFILE, Transport(fleet.url), boot_check=quick_boot)
    running, slot = a.running()
    assert running in (1, release) and verify_bundle(slot)
    second = run_agent(fleet, root, serial)
    assert second.returncode == 0, second.stderr[-2000:]
    a = Agent(root, serial, PROFILE, Transport(fleet.url), boot_check=quick_boot)
    expected = 2 if release == 2 else 1
    assert a.st.state == "idle" and a.st.committed_release == expected and a.running()[0] == expected
    if release == 3:
        assert "3" in a.st.rejected
