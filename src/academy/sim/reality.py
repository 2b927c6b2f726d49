"""Reality robots: the stand-in for real hardware that keeps the sim-to-real gap honest.

A ``RealityRobot(serial)`` is the workcell with hidden physical parameters drawn from its serial
number: friction, masses, object sizes, servo gains and damping, action latency, sensor noise,
lighting and camera pose (ranges wider than training randomization), per-joint encoder
calibration offsets, and gear backlash and gain loss that grow with use (wear). It has the
simulation's observation and action interface; none of its physics is reachable through its
public attributes, so training code cannot read what a real robot would not tell it.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from academy.sim import robot
from academy.sim.env import Actuation, WorkcellEnv
from academy.sim.randomize import RandomizationConfig, Term, randomize
from academy.sim.world import load_model

# Every evaluation on "reality" uses these serials; no training code may use them.
HELD_OUT_SERIALS: tuple[str, ...] = tuple(f"AH1-{n}" for n in range(9001, 9009))

REALITY_RANGES: dict[str, tuple[float, float]] = {
    "friction": (0.6, 1.5),
    "object_mass": (0.7, 1.5),
    "object_size": (0.93, 1.07),
    "actuator_gain": (0.8, 1.15),
    "joint_damping": (0.6, 1.8),
    "action_latency": (0, 2),
    "proprio_noise": (0.001, 0.004),
    "object_noise": (0.001, 0.004),
    "encoder_offset": (0.0, 0.0),  # a reality robot's offsets are its own, fixed (CALIBRATION_STD)
    "lighting": (0.5, 1.5),
    "camera_position": (-0.02, 0.02),
    "camera_rotation": (-0.05, 0.05),
}
CALIBRATION_STD = 0.008  # rad (or m for finger slides): each encoder's zero offset
BACKLASH_RANGE = (0.001, 0.004)  # rad of play when new
WEAR_BACKLASH = 0.008  # rad of extra play at full wear
WEAR_GAIN_LOSS = 0.25  # fraction of servo gain lost at full wear
WEAR_RATE_RANGE = (0.5e-5, 1.5e-5)  # wear per control step: ~100k steps (1.4 h of work) to full


def _serial_rng(serial: str) -> np.random.Generator:
    digest = hashlib.sha256(f"academy-reality:{serial}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class RealityRobot:
    """One physical robot (stand-in), identified by its serial; same interface as the sim env."""

    def __init__(
        self,
        serial: str,
        task: str = "sort_cells",
        difficulty: dict[str, Any] | None = None,
        cameras: Sequence[str] = (),
        usage_steps: int = 0,
    ):
        if not isinstance(serial, str) or not serial.strip():
            raise ValueError(f"a reality robot needs a non-empty serial string, got {serial!r}")
        self.serial = serial
        self.usage_steps = int(usage_steps)
        rng = _serial_rng(serial)
        config = RandomizationConfig({k: Term(*v) for k, v in REALITY_RANGES.items()})
        model = randomize(load_model(), rng, config)
        arm = np.array(["shoulder" in j or "elbow" in j or "wrist" in j for j in robot.JOINTS])
        # hidden: kept in a closure-like private slot, never returned by a public method
        self.__hidden = {
            "kp": model.actuator_gainprm[:, 0].copy(),
            "calibration": np.clip(rng.normal(0, CALIBRATION_STD, robot.N_ACTUATORS), -0.02, 0.02),
            "backlash": np.where(arm, rng.uniform(*BACKLASH_RANGE, robot.N_ACTUATORS), 0.0),
            "wear_rate": rng.uniform(*WEAR_RATE_RANGE),
            "arm": arm,
        }
        self.__env = WorkcellEnv(task, difficulty, cameras=cameras, model=model)

    # ---------------------------------------------------------------- the robot's interface
    @property
    def task(self):
        return self.__env.task

    @property
    def max_steps(self) -> int:
        return self.__env.max_steps

    @property
    def wear(self) -> float:
        """Wear in [0, 1], as a maintenance log would show it (usage only, not its effects)."""
        return float(min(1.0, self.usage_steps * self.__hidden["wear_rate"]))

    def enable_safety(self, limits=None) -> None:
        """Turn on the robot's safety monitor (its controller's own: counts only, no physics out)."""
        self.__env.enable_safety(limits)

    def safety_log(self) -> list[dict]:
        """Per-episode safety counts so far, the running episode included."""
        return self.__env.safety_log()

    def set_task(self, task: str, difficulty: dict[str, Any] | None = None) -> None:
        env = self.__env
        self.__env = WorkcellEnv(task, difficulty, cameras=env.cameras, model=env.model)
        self.__env.monitor = env.monitor

    def reset(self, seed: int | None = None) -> tuple[dict, dict]:
        self.__apply_wear()
        obs, info = self.__env.reset(seed)
        obs.pop("context")  # a real robot does not know its physics
        return obs, {"success": False, "goal": info["goal"], "serial": self.serial}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.__env.step(action)
        obs.pop("context")
        self.usage_steps += 1
        info["serial"] = self.serial
        return obs, reward, terminated, truncated, info

    def render(self, camera: str = "overview", size: tuple[int, int] | None = None) -> np.ndarray:
        return self.__env.render(camera, size)

    def close(self) -> None:
        self.__env.close()

    def __repr__(self) -> str:
        return f"RealityRobot({self.serial!r}, usage_steps={self.usage_steps})"

    def __apply_wear(self) -> None:
        h, env = self.__hidden, self.__env
        w = self.wear
        env.model.actuator_gainprm[:, 0] = h["kp"] * np.where(h["arm"], 1 - WEAR_GAIN_LOSS * w, 1.0)
        env.model.actuator_biasprm[:, 1] = -env.model.actuator_gainprm[:, 0]
        env.actuation = Actuation(
            calibration=h["calibration"].copy(),
            backlash=h["backlash"] + np.where(h["arm"], WEAR_BACKLASH * w, 0.0),
        )
