"""The server's batched writes, on SQLite and on a real PostgreSQL server, and group commit."""

import asyncio
import threading

import pytest

from academy.deploy.fleetdb import FleetDB
from academy.deploy.server import GroupCommit


def _checkin(serial, release=1, profile="ah1-sim"):
    return {"serial": serial, "profile": profile, "installed_release": release, "slot_state": {"a": release},
            "agent_state": "idle", "battery": 0.5, "charging": True}


def test_batched_writes_on_sqlite_and_a_real_postgresql_server(database_url):
    db = FleetDB(database_url)
    assert db.engine.dialect.name == database_url.split(":")[0].split("+")[0]
    new = db.upsert_robots([_checkin("R1"), _checkin("R2"), _checkin("R1", release=2)])
    assert sorted(new) == ["R1", "R2"]
    assert db.upsert_robots([_checkin("R2", release=3), _checkin("R3")]) == ["R3"]
    robots = {r.serial: r for r in db.robots()}
    assert robots["R1"].installed_release == 2 and robots["R1"].checkins == 2  # last row wins, both count
    assert robots["R2"].installed_release == 3 and robots["R2"].checkins == 2
    assert robots["R2"].slot_state == {"a": 3} and robots["R3"].checkins == 1
    rows = [{"serial": f"R{i}", "release": 1, "kind": "shift", "ok": True, "episodes": i, "successes": 0,
             "safety_stops": 0, "detail": ""} for i in range(1, 6)]
    ids = db.add_health(rows)
    assert len(ids) == 5 and ids == sorted(ids)
    assert [h.episodes for h in db.health(release=1)] == [1, 2, 3, 4, 5]


def test_group_commit_batches_waits_and_fails_whole_batches():
    batches, gate = [], threading.Event()

    def flush(items):
        gate.wait(5)  # the first batch holds the writer while the rest arrive
        batches.append(list(items))
        if "bad" in items:
            raise RuntimeError("disk full")
        return [f"stored {i}" for i in items]

    async def main():
        g = GroupCommit(flush)
        first = asyncio.create_task(g.submit("a"))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(g.submit(x)) for x in ("b", "c", "d")]
        await asyncio.sleep(0.05)
        gate.set()
        out = await asyncio.gather(first, *rest)
        bad = await asyncio.gather(g.submit("bad"), g.submit("e"), return_exceptions=True)
        return out, bad

    out, bad = asyncio.run(main())
    assert out == ["stored a", "stored b", "stored c", "stored d"]
    assert batches[:2] == [["a"], ["b", "c", "d"]]  # three requests, one transaction
    assert all(isinstance(e, RuntimeError) for e in bad)  # nobody is told "stored" for a failed batch
