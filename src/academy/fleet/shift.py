"""A shift: a reality robot works through task episodes with the bundle it runs.

The robot's own controller watches the bundle's safety limits (``safety_limits.json``) and
stops an episode at the first crossing: the episode counts as failed and as one safety stop.
Wear carries over from shift to shift through ``usage_steps``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path



@dataclass
class ShiftReport:
    serial: str
    release: int
    task: str
    episodes: int
    successes: int
    safety_stops: int
    usage_steps: int
    stops: list[dict]  # per stopped episode: seed, step, what was crossed

    def health(self) -> dict:
        """The body of the server's ``/v1/health`` shift report."""
        return {"serial": self.serial, "release": self.release, "kind": "shift", "ok": True,
                "episodes": self.episodes, "successes": self.successes, "safety_stops": self.safety_stops,
                "detail": json.dumps(self.stops[:5])}

    def to_dict(self) -> dict:
        return asdict(self)


def run_shift(bundle: str | Path, serial: str, seeds: list[int], task: str | None = None,
              usage_steps: int = 0) -> ShiftReport:
    """Run one episode per seed on ``RealityRobot(serial)`` with the policy of ``bundle`` (a
    verified bundle folder: the robot's ``current`` slot)."""
    import torch

    from academy.exam.safety import SafetyLimits
    from academy.fleet.robot import run_episode
    from academy.learn.policy import Policy
    from academy.sim.reality import RealityRobot

    torch.set_num_threads(1)
    bundle = Path(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    skills = json.loads((bundle / "skills.json").read_text())
    policy = Policy.load(bundle / "policy")
    task = task or (skills[0]["name"] if skills else policy.tasks[0])
    if task not in policy.tasks:
        raise ValueError(f"release {manifest['release']} has no skill {task!r} (it has {policy.tasks})")
    robot = RealityRobot(serial, task, usage_steps=usage_steps)
    limits = SafetyLimits.load(bundle / "safety_limits.json")
    episodes = [run_episode(robot, policy, seed, limits) for seed in seeds]
    robot.close()
    stops = [e.safety_stop for e in episodes if e.safety_stop]
    return ShiftReport(serial, int(manifest["release"]), task, len(seeds), sum(e.success for e in episodes), len(stops),
                       robot.usage_steps, stops)
