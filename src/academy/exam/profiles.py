"""Hardware profiles: the robot compute modules a policy may run on, and what a policy needs.

A profile is a budget: the p99 latency of one ``Policy.act`` call (batch 1, one thread: the
20 Hz control loop's share of a 50 ms step, after the physics or the real servos' I/O) and the
resident memory of the process that runs it. ``measure_inference`` loads the policy in a fresh
Python process (what a robot would do), times ``act`` on recorded observations and reads the
process's peak resident memory; ``fits`` says which profiles hold it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    description: str
    latency_p99_ms: float  # one act() call, batch 1, one thread
    memory_mb: float  # peak resident memory of the policy process

    def fits(self, measured: dict) -> bool:
        return measured["p99_ms"] <= self.latency_p99_ms and measured["peak_rss_mb"] <= self.memory_mb


PROFILES: dict[str, HardwareProfile] = {
    p.name: p
    for p in (
        HardwareProfile("ah1-cm3", "older compute module: 4 ARM cores at 1.5 GHz, 2 GB shared", 10.0, 1024.0),
        HardwareProfile("ah1-cm5", "newer compute module: 8 cores at 2.4 GHz, 8 GB", 4.0, 4096.0),
        # a robot simulated on a shared machine (the fleet stage's physics robots, tests): the
        # whole 50 ms control step is its budget, since it shares its cores with other work
        HardwareProfile("ah1-sim", "simulated robot on a shared machine: the 50 ms control step", 50.0, 4096.0),
    )
}


def profile(name: str) -> HardwareProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown hardware profile {name!r}; known: {sorted(PROFILES)}")
    return PROFILES[name]


_MEASURE = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from academy.learn.policy import Policy, env_obs_batch
from academy.sim.env import WorkcellEnv
policy = Policy.load(sys.argv[1])
calls = int(sys.argv[2])
env = WorkcellEnv(policy.tasks[0])
obs, _ = env.reset(0)
policy.reset(1)
batch = env_obs_batch([obs])
for _ in range(20):
    policy.act(batch)
times = []
for _ in range(calls):
    t0 = time.perf_counter()
    policy.act(batch)
    times.append(time.perf_counter() - t0)
ms = np.array(times) * 1e3
print(json.dumps({"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "calls": calls}))
"""


def measure_inference(policy_dir: str | Path, calls: int = 2000) -> dict:
    """p50/p99 of ``Policy.act`` (batch 1, one thread) and peak RSS, in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(policy_dir), str(calls)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring inference of {policy_dir} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    weights = sum(f.stat().st_size for f in Path(policy_dir).glob("*.pt"))
    out["weights_mb"] = weights / 2**20
    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    out["fits"] = [p.name for p in PROFILES.values() if p.fits(out)]
    return out


def profiles_table() -> list[dict]:
    return [asdict(p) for p in PROFILES.values()]
