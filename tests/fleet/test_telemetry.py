"""Telemetry without loss: the robot's spool, the server's inbox and the fleet dataset."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from academy.data import Dataset
from academy.data.collect import workcell_features
from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import ServerThread, create_app, free_port
from academy.fleet.robot import FleetRobot, Order, RobotConfig
from academy.fleet.telemetry import Spool, TelemetryError, TelemetryStore, pack_episode, unpack_episode
from fleethelp import PROFILE, start_rollout

FEATURES = workcell_features()


def frames(T: int = 5, **override) -> dict:
    out = {k: np.zeros((T, *f["shape"]), f["dtype"]) for k, f in FEATURES.items()}
    return {**out, **override}


def meta(outcome="success", **kw) -> dict:
    return {"serial": "AH1-3200", "release": 1, "task": "handover", "seed": 0, "outcome": outcome, **kw}


def test_an_upload_is_checked_and_named_by_its_problem():
    good = pack_episode(frames(), meta(key="AH1-3200-abcdef12"))
    assert unpack_episode(good, FEATURES)[1]["outcome"] == "success"
    cases = {
        b"not an archive": "not an episode archive",
        pack_episode(frames(), {"serial": "x"}): "lacks 'key'",
        pack_episode(frames(), meta(key="bad key!")): "idempotency key",
        pack_episode(frames(), meta(key="AH1-3200-abcdef12", task="juggle")): "task 'juggle'",
        pack_episode(frames(), meta(key="AH1-3200-abcdef12", outcome="great")): "outcome 'great'",
        pack_episode({k: v for k, v in frames().items() if k != "action"}, meta(key="AH1-3200-abcdef12")): "missing ['action']",
        pack_episode(frames(**{"action": np.zeros((5, 27), np.float32)}), meta(key="AH1-3200-abcdef12")): "feature 'action' has shape",
        pack_episode(frames(**{"action": np.full((5, 28), np.nan, np.float32)}), meta(key="AH1-3200-abcdef12")): "NaN",
        pack_episode(frames(**{"action": np.zeros((4, 28), np.float32)}), meta(key="AH1-3200-abcdef12")): "one non-zero length",
    }
    for data, problem in cases.items():
        with pytest.raises(TelemetryError, match=problem.replace("[", r"\[").replace("(", r"\(")):
            unpack_episode(data, FEATURES)


def test_the_spool_sends_failures_first_keeps_all_while_the_server_is_down_and_sets_refused_files_aside(tmp_path):
    spool = Spool(tmp_path / "robot")
    ok = spool.add_episode(frames(), meta())
    spool.add_event("AH1-3200", "dock", 1, {"battery": 0.1})
    bad = spool.add_episode(frames(**{"action": np.zeros((5, 27), np.float32)}), meta(outcome="failure"))
    failed = spool.add_episode(frames(), meta(outcome="failure"))
    names = [p.name for p in spool.pending()]
    assert [n.split("-")[2] for n in names] == ["ep", "ep", "ev", "ep"]  # failures first, oldest first
    assert bad in names[0] and failed in names[1] and ok in names[3]
    down = spool.flush(httpx.Client(timeout=5), f"http://127.0.0.1:{free_port()}")
    assert down["sent"] == 0 and down["left"] == 4 and "ConnectError" in down["error"]
    store_home = tmp_path / "home"
    app = create_app_for_telemetry(store_home)
    with ServerThread(app) as srv:
        up = spool.flush(httpx.Client(timeout=30), srv.url)
        assert up == {"sent": 3, "duplicates": 0, "rejected": 1, "left": 0, "error": ""}
        reason = (spool.dir / "rejected" / f"{names[0]}.reason").read_text()
        assert "HTTP 422" in reason and "feature 'action' has shape" in reason
        # a robot that never heard the answer sends again: the server holds it once
        again = httpx.post(f"{srv.url}/v1/telemetry/episodes", content=pack_episode(frames(), meta(key=ok)))
        assert again.json()["duplicate"] is True
        assert httpx.post(f"{srv.url}/v1/telemetry/ingest").json()["added"] == 2
        again = httpx.post(f"{srv.url}/v1/telemetry/episodes", content=pack_episode(frames(), meta(key=ok)))
        assert again.json()["duplicate"] is True  # known to the dataset now
        assert httpx.post(f"{srv.url}/v1/telemetry/ingest").json() == {"added": 0, "duplicates_dropped": 1, "damaged": 0,
                                                                        "episodes": 2}
    ds = Dataset(store_home / "fleet" / "episodes")
    assert sorted(ds.episodes["academy/key"]) == sorted([ok, failed])
    assert set(ds.episodes["academy/source"]) == {"fleet"} and set(ds.episodes["academy/robot_serial"]) == {"AH1-3200"}
    assert sorted(ds.episodes["academy/outcome"]) == ["failure", "success"]


def create_app_for_telemetry(home):
    from academy.release.publish import ReleaseHome

    ReleaseHome(home).init()
    return create_app(home)


def test_ingest_after_a_crash_between_flush_and_cleanup_duplicates_nothing(tmp_path):
    store = TelemetryStore(tmp_path)
    keys = [store.receive_episode(pack_episode(frames(), meta(key=f"AH1-3200-{i:08d}")))["key"] for i in range(3)]
    kept = {p.name: p.read_bytes() for p in store.inbox_files()}
    assert store.ingest()["added"] == 3
    for name, data in kept.items():  # as if the server died after the dataset's flush, before the unlink
        (store.inbox / name).write_bytes(data)
    assert store.ingest() == {"added": 0, "duplicates_dropped": 3, "damaged": 0, "episodes": 3}
    assert sorted(Dataset(store.dataset_path).episodes["academy/key"]) == keys
    (store.inbox / "AH1-3200-99999999.npz").write_bytes(b"torn")  # damage on the server's own disk
    assert store.ingest()["damaged"] == 1 and (store.inbox / "AH1-3200-99999999.damaged").exists()


def _serve(home, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "academy.cli", "serve", "--home", str(home), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/robots", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the update server did not start")


def test_the_server_killed_and_restarted_mid_shift_loses_and_duplicates_nothing(fleet_home, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(fleet_home.home, port)
    try:
        start_rollout(url, 1)
        serials = ["AH1-3201", "AH1-3202"]
        bots = [FleetRobot(tmp_path / s, s, PROFILE, url, RobotConfig(max_episode_steps=30, self_test_steps=10),
                           trusted_root=fleet_home.signing.trusted_root()) for s in serials]
        done, lock, log = [], threading.Lock(), []

        def on_episode(ep):
            nonlocal server
            with lock:
                done.append(ep.key)
                if len(done) == 4:  # kill -9 the server mid-shift (whatever it was doing)
                    os.kill(server.pid, signal.SIGKILL)
                    server.wait()
                    log.append("killed")
                elif len(done) == 10:  # robots worked and spooled meanwhile; the server comes back
                    server = _serve(fleet_home.home, port)
                    log.append("restarted")

        results = {}

        def shift(bot):
            results[bot.serial] = bot.work([Order("handover", s) for s in range(8)], on_episode=on_episode)

        threads = [threading.Thread(target=shift, args=(b,)) for b in bots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log == ["killed", "restarted"] and len(done) == 16
        for s in serials:
            assert results[s].upload["left"] == 0 and results[s].episodes == 8
        assert all(not b.spool.pending() for b in bots)
        assert httpx.post(f"{url}/v1/telemetry/ingest", timeout=120).json()["damaged"] == 0
    finally:
        server.kill()
        server.wait()
    eps = Dataset(fleet_home.home / "fleet" / "episodes").episodes
    assert sorted(eps["academy/key"]) == sorted(done)  # 0 lost, 0 duplicated
    assert sorted(eps["academy/robot_serial"]) == sorted(serials * 8)
    db = FleetDB(fleet_home.db_url)
    for s in serials:  # every shift report and event once: the two installs of release 1 among them
        assert [e.release for e in db.events(kind="install", serial=s)] == [1]
        shifts = [h for h in db.health(1) if h.kind == "shift" and h.serial == s]
        assert sum(h.episodes for h in shifts) == 8


def test_failures_are_redone_on_the_same_robot_once_and_weigh_more_in_training(tmp_path):
    from academy.data.collect import collect
    from academy.data.store import merge
    from academy.fleet.learnset import corrections
    from academy.learn.train import _frame_weights

    store = TelemetryStore(tmp_path)
    # three fleet episodes of one robot: a success and two failures (scene seeds 3 and 4)
    for i, (seed, outcome) in enumerate([(2, "success"), (3, "failure"), (4, "failure")]):
        store.receive_episode(pack_episode(frames(), meta(key=f"AH1-3300-{i:08d}", serial="AH1-3300", seed=seed,
                                                          outcome=outcome)))
    store.ingest()
    out = tmp_path / "corrections"
    r = corrections(store.dataset_path, out, workers=1)
    assert r["failures"] == 2 and r["redone"] == 2
    ds = Dataset(out)
    assert sorted(ds.episodes["academy/seed"]) == [3, 4] and set(ds.episodes["academy/source"]) == {"correction"}
    assert set(ds.episodes["academy/robot_serial"]) == {"AH1-3300"}
    assert sorted(ds.episodes["academy/key"]) == ["AH1-3300-00000001", "AH1-3300-00000002"]
    assert r["corrections_succeeded"] == int((ds.episodes["academy/outcome"] == "success").sum())
    assert ds.episodes["length"].min() > 5  # the expert's own episodes, not the fleet's frames
    assert corrections(store.dataset_path, out, workers=1)["redone"] == 0  # no failure is redone twice
    # in training, frames of corrections are drawn more often than the others
    collect("handover", 1, tmp_path / "demos", workers=1)
    both = merge([tmp_path / "demos", out], tmp_path / "both")
    w = _frame_weights(both, list(both.episodes["episode_index"]), {"correction": 3.0})
    n_demo = int(both.episodes["length"].iloc[0])
    assert w is not None and float(w[0]) == 1.0 and float(w[n_demo]) == 3.0 and len(w) == both.num_frames
    assert _frame_weights(both, list(both.episodes["episode_index"]), {"dream": 5.0}) is None  # uniform: unchanged
