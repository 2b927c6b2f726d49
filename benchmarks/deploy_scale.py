"""1,000 lightweight agents through a staged rollout on one machine: check-ins per second and p99.

    python benchmarks/deploy_scale.py --robots 1000

The update server runs as its own process (``academy serve`` on a loopback port, SQLite). The
agents are lightweight: no physics and no install, they speak the real protocol (check-in, and
when offered the release, an install report and a shift report) from asyncio tasks over a pool
of HTTP connections. Rounds of check-ins go on until the rollout is done. The baseline, in the
same run, is a request the server answers without the database (``GET /openapi.json``): the
ratio says what the check-in's database work costs against bare HTTP handling.

Writes benchmarks/results/deploy_scale.json. Goal: at least 1,000 check-ins per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from academy.deploy.server import free_port

OUT = Path(__file__).parent / "results" / "deploy_scale.json"
PROFILE = "ah1-sim"


def make_home(root: Path, policy: str) -> None:
    """A release home with releases 1 and 2 of ``policy`` (the exam is skipped: the gate is not
    what is measured; the bundles are real)."""
    from academy.exam.exam import run_exam, ExamConfig
    from academy.release.publish import ReleaseHome

    home = ReleaseHome(root)
    home.init()
    report = run_exam(policy, None, ExamConfig(episodes=1, reality_episodes=0, latency_calls=50))
    report["inference"]["fits"] = [PROFILE]
    for skill in report["skills"].values():
        skill["safety"] = {k: (0 if k not in ("worst", "steps") else v) for k, v in skill["safety"].items()}
    home.publish(policy, report)
    home.publish(policy, report)


async def run(url: str, robots: int, concurrency: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        installed = dict.fromkeys((f"AH1-{i:05d}" for i in range(robots)), 1)
        sem = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def checkin(serial):
            async with sem:
                t0 = time.perf_counter()
                r = await http.post("/v1/checkin", json={"serial": serial, "profile": PROFILE,
                                                         "installed_release": installed[serial], "charging": True})
                latencies.append(time.perf_counter() - t0)
                offered = r.json()["release"]
                if offered:
                    installed[serial] = offered
                    await http.post("/v1/health", json={"serial": serial, "release": offered, "kind": "install", "ok": True})
                    await http.post("/v1/health", json={"serial": serial, "release": offered, "kind": "shift", "ok": True,
                                                        "episodes": 10, "successes": 9})
                elif installed[serial] == 1:
                    await http.post("/v1/health", json={"serial": serial, "release": 1, "kind": "shift", "ok": True,
                                                        "episodes": 1, "successes": 1})

        t_start = time.perf_counter()
        await asyncio.gather(*(checkin(s) for s in installed))  # first contact: every robot registers
        rollout = (await http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "min_episodes": 20})).json()
        rounds, statuses = 0, []
        while rounds < 20:
            rounds += 1
            await asyncio.gather(*(checkin(s) for s in installed))
            st = (await http.get(f"/v1/rollouts/{rollout['id']}")).json()
            statuses.append({"round": rounds, "cohort": st["cohort"], "let_in": len(st["let_in"]),
                             "installed": len(st["installed"]), "state": st["state"]})
            if st["state"] != "running":
                break
        wall = time.perf_counter() - t_start
        # baseline: bare HTTP handling on the same server, same client and concurrency
        base_lat: list[float] = []

        async def bare(_):
            async with sem:
                t0 = time.perf_counter()
                await http.get("/openapi.json")
                base_lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(bare(i) for i in range(robots)))
        base_wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1e3
    return {"robots": robots, "concurrency": concurrency, "checkins": len(latencies), "rounds": rounds,
            "wall_seconds": round(wall, 2), "rollout": statuses,
            "checkin_p50_ms": round(float(np.percentile(lat, 50)), 2), "checkin_p99_ms": round(float(np.percentile(lat, 99)), 2),
            "bare_requests_per_second": round(robots / base_wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--robots", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--policy", required=True, help="any policy checkpoint (its bundle is what robots are offered)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        make_home(home, args.policy)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "academy.cli", "serve", "--home", str(home), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{url}/v1/robots", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            result = asyncio.run(run(url, args.robots, args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
    # check-ins per wall second, with the install and shift reports they trigger in the same
    # wall-clock: a lower bound on the check-in rate alone
    result["checkins_per_second"] = round(result["checkins"] / result["wall_seconds"], 1)
    result["ratio_checkins_to_bare"] = round(result["checkins_per_second"] / result["bare_requests_per_second"], 3)
    result["goal_checkins_per_second"] = 1000
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rollout"}, indent=1))
    print(result["rollout"][-3:])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
