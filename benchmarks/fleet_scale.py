"""64 physics robots on a local Ray: control steps per second across the fleet.

    python benchmarks/fleet_scale.py [--robots 64] [--orders 2] [--workers CORES] [--baseline-robots 8]

Writes benchmarks/results/fleet_scale.json. The real path end to end: a release home with
release 1 (the shipped ``handover-enc`` policy of tests/assets/policies, examined in simulation
as the fleet tests do), the update server on a loopback port (``ServerThread``, as the fleet
tests run it), a rollout of release 1 to every robot, then ``run_fleet(..., backend="ray")``:
each robot a Ray task that provisions its folder, docks for its first release (download, TUF
verification, boot self-test, install), then works ``--orders`` handover episodes in the 20 Hz
control loop (policy inference plus one physics step per control step; the simulated robot runs
as fast as it can), uploading its telemetry after each.

Reported: control steps per second across the fleet (all robots' control steps over the wall
time of ``run_fleet``, installs and uploads included, Ray's start not), the same per robot (its
share: fleet rate / robots), the loop's own rate while a robot works (1000 / median step ms),
and how many robots this machine could keep at 20 Hz in real time (fleet rate / 20).

Baseline in the same run: the same work (same orders, config and workers) for
``--baseline-robots`` robots on the local backend (spawned processes), against the same
server; the ratio is the Ray fleet's steps per second over the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from academy.deploy.server import ServerThread, create_app
from academy.fleet.robot import Order, RobotConfig, run_fleet

OUT = Path(__file__).parent / "results" / "fleet_scale.json"
ASSETS = Path(__file__).parents[1] / "tests" / "assets" / "policies"
PROFILE = "ah1-sim"


def make_home(root: Path, policy: Path):
    """A release home with ``policy`` as release 1, examined (one episode) under limits that stop
    only past a joint's end, as tests/fleet/conftest.py does."""
    from academy.exam.exam import ExamConfig, run_exam
    from academy.exam.safety import SafetyLimits
    from academy.release.publish import ReleaseHome

    home = ReleaseHome(root)
    home.init()
    report = run_exam(str(policy), ["handover"], ExamConfig(episodes=1, reality_episodes=0, latency_calls=50,
                                                          limits=SafetyLimits(joint_limit_margin=0.0)))
    report["inference"]["fits"] = [PROFILE]  # the profile's budget is the whole 50 ms step
    assert home.publish(str(policy), report).decision.passed
    return home


def shift(backend: str, root: Path, serials: list[str], orders: int, url: str, trusted_root: bytes, workers: int,
          cfg: RobotConfig) -> dict:
    plan = {s: [Order("handover", 100 * i + k) for k in range(orders)] for i, s in enumerate(serials)}
    done_at: list[float] = []
    t0 = time.perf_counter()
    out = run_fleet(root, serials, plan, url, PROFILE, cfg, trusted_root, workers=workers,
                    on_robot=lambda s: done_at.append(time.perf_counter() - t0), backend=backend)
    wall = time.perf_counter() - t0
    steps = sum(s["control_steps"] for s in out)
    p50 = float(np.median([s["step_ms_p50"] for s in out]))
    return {"backend": backend, "robots": len(serials), "workers": workers, "orders_per_robot": orders,
            "episodes": sum(s["episodes"] for s in out), "successes": sum(s["successes"] for s in out),
            "safety_stops": sum(s["safety_stops"] for s in out),
            "installs": sum(len(s["installs"]) for s in out), "control_steps": steps, "wall_s": round(wall, 2),
            "steps_per_s": round(steps / wall, 1), "per_robot_steps_per_s": round(steps / wall / len(serials), 2),
            "loop_steps_per_s_while_working": round(1000 / p50, 1), "step_ms_p50": round(p50, 2),
            "step_ms_p99_worst": round(max(s["step_ms_p99"] for s in out), 2),
            "deadline_misses_per_10k": round(sum(s["deadline_misses"] for s in out) * 1e4 / max(1, steps), 1),
            "robots_with_misses": sum(s["deadline_misses"] > 0 for s in out),
            "deadline_misses_worst_robot": max(s["deadline_misses"] for s in out),
            "robots_at_20hz": round(steps / wall / 20, 1), "first_robot_done_s": round(done_at[0], 2),
            "upload_left": sum(s["upload"]["left"] for s in out),
            "upload_errors": sorted({s["upload"]["error"] for s in out} - {""})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robots", type=int, default=64)
    ap.add_argument("--orders", type=int, default=2, help="handover episodes per robot")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="robots working at once (both backends)")
    ap.add_argument("--baseline-robots", type=int, default=8, help="robots of the local-backend baseline")
    ap.add_argument("--max-steps", type=int, help="cut episodes to this many control steps (default: the task's)")
    args = ap.parse_args()
    import ray

    from academy.learn.checkpoint import load_model, save_checkpoint

    cfg = RobotConfig(max_episode_steps=args.max_steps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        name = "handover-enc"
        train = json.loads((ASSETS / name / "train.json").read_text())
        policy = save_checkpoint(tmp / name, load_model(ASSETS / name), train)  # as benchmarks/fleet_runtime.py does
        home = make_home(tmp / "home", policy)
        # the update server in this process's background thread, as the fleet tests run it: this process
        # only waits on the robots, which work in their own processes
        with ServerThread(create_app(home.home)) as srv:
            # the rollout delivers release 1 to every robot; its health gate is not what is measured: with
            # every robot let in there is no baseline to judge stops by rate against, so a stop aborts nothing
            httpx.post(f"{srv.url}/v1/rollouts", json={"release": 1, "profile": PROFILE, "canary_share": 1.0,
                                                      "min_episodes": 1, "safety_stops": "rate"},
                       timeout=60).raise_for_status()
            trusted = home.signing.trusted_root()
            base = shift("local", tmp / "local", [f"AH1-L{n:03d}" for n in range(args.baseline_robots)],
                         args.orders, srv.url, trusted, args.workers, cfg)
            print(json.dumps(base), flush=True)
            t0 = time.perf_counter()  # started here, not in run_fleet, so that its start is timed apart
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            ray_init = time.perf_counter() - t0
            try:
                fleet = shift("ray", tmp / "ray", [f"AH1-{n:04d}" for n in range(1, args.robots + 1)], args.orders,
                              srv.url, trusted, args.workers, cfg)
            finally:
                ray.shutdown()
            fleet["ray_init_s"] = round(ray_init, 2)
            telemetry = httpx.get(f"{srv.url}/v1/telemetry", timeout=60).json()
    res = {"machine": {"cpus": os.cpu_count()}, "max_episode_steps": args.max_steps, "ray": fleet,
           "baseline_local": base,
           "ratio_steps_per_s_ray_over_local": round(fleet["steps_per_s"] / base["steps_per_s"], 3),
           "server_inbox_episodes": telemetry["inbox"],
           "episodes_expected": fleet["episodes"] + base["episodes"]}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
