"""1,000 lightweight agents through a staged rollout on one machine: check-ins per second and p99.

    python benchmarks/deploy_scale.py --robots 1000

The update server runs as its own process (``academy serve`` on a loopback port, SQLite). The
agents are lightweight: no physics and no install, they speak the real protocol (check-in, and
when offered the release, an install report and a shift report) from asyncio tasks over a pool
of keep-alive HTTP connections (aiohttp when it is installed, which costs the client less CPU
on a machine it shares with the server; httpx otherwise; the JSON says which).

Two phases: rounds of check-ins until the rollout is done (with the install and shift reports
they trigger), then five steady rounds where every robot checks in with nothing new to install,
as a fleet does most of the time. The baseline, in the same run, is a request the server
answers without the database (``GET /openapi.json``): the ratio says what the check-in's
database work costs against bare HTTP handling.

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
STEADY_ROUNDS = 5


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


class Client:
    """POST/GET JSON over a pool of keep-alive connections; counts failed requests."""

    def __init__(self, url: str, concurrency: int):
        self.url, self.concurrency, self.errors, self.calls = url, concurrency, [], 0
        try:
            import aiohttp
            self.kind = f"aiohttp {aiohttp.__version__}"
        except ImportError:
            self.kind = f"httpx {httpx.__version__}"

    async def __aenter__(self):
        if self.kind.startswith("aiohttp"):
            import aiohttp
            self.session = aiohttp.ClientSession(self.url, connector=aiohttp.TCPConnector(limit=self.concurrency),
                                                 timeout=aiohttp.ClientTimeout(total=60))
        else:
            self.session = httpx.AsyncClient(base_url=self.url, timeout=60, limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency))
        return self

    async def __aexit__(self, *exc):
        await (self.session.close() if self.kind.startswith("aiohttp") else self.session.aclose())

    async def call(self, method: str, path: str, body=None):
        self.calls += 1
        try:
            if self.kind.startswith("aiohttp"):
                async with self.session.request(method, path, json=body) as r:
                    r.raise_for_status()
                    return await r.json()
            r = await self.session.request(method, path, json=body)
            r.raise_for_status()
            return r.json()
        except Exception as e:  # noqa: BLE001 - counted and shown, the run goes on
            self.errors.append(f"{method} {path}: {type(e).__name__} {e}")
            return None


async def run(url: str, robots: int, concurrency: int) -> dict:
    async with Client(url, concurrency) as http:
        installed = dict.fromkeys((f"AH1-{i:05d}" for i in range(robots)), 1)
        sem = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def checkin(serial):
            async with sem:
                t0 = time.perf_counter()
                r = await http.call("POST", "/v1/checkin", {"serial": serial, "profile": PROFILE,
                                                            "installed_release": installed[serial], "charging": True})
                if r is None:
                    return
                latencies.append(time.perf_counter() - t0)
                offered = r["release"]
                if offered:
                    installed[serial] = offered
                    await http.call("POST", "/v1/health", {"serial": serial, "release": offered, "kind": "install", "ok": True})
                    await http.call("POST", "/v1/health", {"serial": serial, "release": offered, "kind": "shift",
                                                           "ok": True, "episodes": 10, "successes": 9})
                elif installed[serial] == 1:
                    await http.call("POST", "/v1/health", {"serial": serial, "release": 1, "kind": "shift", "ok": True,
                                                           "episodes": 1, "successes": 1})

        t_start = time.perf_counter()
        await asyncio.gather(*(checkin(s) for s in installed))  # first contact: every robot registers
        rollout = await http.call("POST", "/v1/rollouts", {"release": 2, "profile": PROFILE, "min_episodes": 20})
        rounds, statuses = 0, []
        while rounds < 20:
            rounds += 1
            await asyncio.gather(*(checkin(s) for s in installed))
            st = await http.call("GET", f"/v1/rollouts/{rollout['id']}")
            statuses.append({"round": rounds, "cohort": st["cohort"], "let_in": len(st["let_in"]),
                             "installed": len(st["installed"]), "state": st["state"]})
            if st["state"] != "running":
                break
        wall = time.perf_counter() - t_start
        rollout_checkins, rollout_requests = len(latencies), http.calls
        # steady state: the fleet checks in with nothing new to install (most check-ins of a fleet)
        steady_lat: list[float] = []

        async def steady(serial):
            async with sem:
                t0 = time.perf_counter()
                if await http.call("POST", "/v1/checkin", {"serial": serial, "profile": PROFILE,
                                                          "installed_release": installed[serial], "charging": False}):
                    steady_lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        for _ in range(STEADY_ROUNDS):
            await asyncio.gather(*(steady(s) for s in installed))
        steady_wall = time.perf_counter() - t0
        # baseline: bare HTTP handling on the same server, same client and concurrency
        async def bare(_):
            async with sem:
                await http.call("GET", "/openapi.json")

        t0 = time.perf_counter()
        await asyncio.gather(*(bare(i) for i in range(robots)))
        base_wall = time.perf_counter() - t0
    lat, slat = np.array(latencies) * 1e3, np.array(steady_lat) * 1e3
    return {"robots": robots, "concurrency": concurrency, "checkins": rollout_checkins, "rounds": rounds,
            "requests_during_rollout": rollout_requests, "requests_per_second_during_rollout": round(rollout_requests / wall, 1),
            "wall_seconds": round(wall, 2), "rollout": statuses,
            "checkin_p50_ms": round(float(np.percentile(lat, 50)), 2), "checkin_p99_ms": round(float(np.percentile(lat, 99)), 2),
            "steady_checkins": len(steady_lat), "steady_checkins_per_second": round(len(steady_lat) / steady_wall, 1),
            "steady_p50_ms": round(float(np.percentile(slat, 50)), 2), "steady_p99_ms": round(float(np.percentile(slat, 99)), 2),
            "bare_requests_per_second": round(robots / base_wall, 1), "client": http.kind,
            "failed_requests": len(http.errors), "first_errors": http.errors[:5]}


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
        log = open(Path(tmp) / "server.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "academy.cli", "serve", "--home", str(home), "--port", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
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
            log.close()
            tail = (Path(tmp) / "server.log").read_text()[-2000:]
            if tail.strip():
                print("server log (tail):\n" + tail)
    # during the rollout: check-ins per wall second, with the install and shift reports they
    # trigger in the same wall-clock (a lower bound on the check-in rate alone)
    result["checkins_per_second"] = round(result["checkins"] / result["wall_seconds"], 1)
    result["ratio_steady_checkins_to_bare"] = round(result["steady_checkins_per_second"] / result["bare_requests_per_second"], 3)
    result["goal_checkins_per_second"] = 1000
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rollout"}, indent=1))
    print(result["rollout"][-3:])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
