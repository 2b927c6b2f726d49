"""The workcell environment: one scene, one task, stepped at 20 Hz.

``WorkcellEnv`` is the small core every other piece wraps: the Gymnasium env, the batched env
and the reality robot. An action is the 28 joint-position targets (``robot.JOINTS`` order);
an observation is a dict:

- ``proprio`` (56,): measured joint positions then joint velocities
- ``objects`` (11, 7): position and (w, x, y, z) quaternion of the ten cells and the part
- ``goal`` (40,): the task's goal vector (see each task file)
- ``task`` (): the task's registry index
- ``context`` (3,): the episode's physical context (``randomize.CONTEXT_TERMS`` scale factors;
  ones unless the env draws or is given one). A simulation's truth, recorded for world models;
  a policy does not read it.
- ``images`` (optional): camera name -> (H, W, 3) uint8

The physics runs at the model's timestep (2 ms) under each 50 ms control step. What separates
a randomized or real robot from the nominal one (action latency, sensor noise, joint
calibration offsets, gear backlash) lives in ``Actuation`` and the model's numeric fields, so
one code path serves them all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import mujoco
import numpy as np

from academy.sim import robot
from academy.sim.randomize import (NOMINAL_CONTEXT, RandomizationConfig, apply_context, check_context, draw_context,
                                   randomize, runtime_terms)
from academy.sim.tasks import Task, make_task
from academy.sim.world import OBJECTS, Workcell, load_model

CONTROL_DT = 0.05  # s: the 20 Hz System-1 loop
SETTLE_SECONDS = 0.2  # physics run at reset so that objects come to rest before the first step
N_PROPRIO = 2 * robot.N_ACTUATORS
ENCODER_STREAM = 104729  # seeds the encoder offsets' own random stream: [seed, ENCODER_STREAM]
CONTEXT_STREAM = 130363  # seeds the physical context's own stream, so the scene stays the seed's


@dataclass
class Actuation:
    """How commands reach the joints and readings come back: ideal unless a robot says otherwise.

    ``calibration`` is each joint encoder's zero offset (reading = true + offset), ``backlash``
    the play (rad or m) between a servo's command and its output.
    """

    calibration: np.ndarray = field(default_factory=lambda: np.zeros(robot.N_ACTUATORS))
    backlash: np.ndarray = field(default_factory=lambda: np.zeros(robot.N_ACTUATORS))


class WorkcellEnv:
    """One workcell scene with one task; ``reset(seed)`` and ``step(action)`` at 20 Hz."""

    def __init__(
        self,
        task: str | Task = "sort_cells",
        difficulty: dict[str, Any] | None = None,
        randomization: RandomizationConfig | None = None,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (120, 160),
        model: mujoco.MjModel | None = None,
        context_ranges: dict[str, tuple[float, float]] | None = None,
    ):
        self.task = make_task(task, **(difficulty or {}))
        self._nominal = model if model is not None else load_model()
        self.randomization = randomization
        self.context_ranges = dict(context_ranges or {})
        if self.context_ranges:
            draw_context(self.context_ranges, np.random.default_rng(0))  # refuse bad ranges now
        self.context = np.array(NOMINAL_CONTEXT)
        unknown = [c for c in cameras if c not in robot.CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; known: {list(robot.CAMERAS)}")
        self.cameras = tuple(cameras)
        self.image_size = tuple(image_size)
        self.model = self._nominal
        self.data = mujoco.MjData(self.model)
        self.world = Workcell(self.model)
        self.actuation = Actuation()
        self.n_substeps = int(round(CONTROL_DT / self.model.opt.timestep))
        self.max_steps = self.task.max_steps(CONTROL_DT)
        self.home = np.array(robot.HOME)
        self.goal: dict = {}
        self.t = 0
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._rng = np.random.default_rng()
        self._pending: deque[np.ndarray] = deque()
        self._held = self.home.copy()
        self._latency = 0
        self._proprio_noise = 0.0
        self._object_noise = 0.0
        self.monitor = None  # an academy.exam.safety.SafetyMonitor, told of every reset and step

    def enable_safety(self, limits=None) -> None:
        """Count safety-limit crossings per episode (``academy.exam.safety``) from the next reset on."""
        from academy.exam.safety import SafetyLimits, SafetyMonitor

        self.monitor = SafetyMonitor(limits or SafetyLimits())

    def safety_log(self) -> list[dict]:
        """Per-episode safety counts so far, the running episode included (``enable_safety`` first)."""
        if self.monitor is None:
            raise RuntimeError("safety monitoring is off: call enable_safety() before the episode")
        return self.monitor.log()

    def set_task(self, task: str | Task, difficulty: dict[str, Any] | None = None) -> None:
        """Another task or difficulty from the next ``reset`` on (the curriculum's lever)."""
        self.task = make_task(task, **(difficulty or {}))
        self.max_steps = self.task.max_steps(CONTROL_DT)

    def potential(self) -> float:
        """The task's dense reward in the current state (what ``step`` returns after a step)."""
        return self.task.reward(self.world, self.data, self.goal)

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, context=None, objects: np.ndarray | None = None) -> tuple[dict, dict]:
        """Start an episode: new randomization (if any), robot at home, task's objects placed.

        ``context`` (scale factors, ``randomize.CONTEXT_TERMS``) sets the episode's physics; without
        it one is drawn from ``context_ranges`` if the env has them. ``objects`` ((11, 7) poses)
        replaces the task's placement after the seed's scene is drawn (a dreamed variation replayed).
        """
        rng = np.random.default_rng(seed)
        model = self._nominal
        if self.randomization is not None:
            model = randomize(model, rng, self.randomization)
        if context is not None:
            self.context = check_context(context)
        elif self.context_ranges:
            self.context = draw_context(self.context_ranges, np.random.default_rng(
                [seed, CONTEXT_STREAM] if seed is not None else None))
        else:
            self.context = np.array(NOMINAL_CONTEXT)
        if np.any(self.context != 1.0):
            model = apply_context(model, self.context)
        if model is not self.model:
            self._set_model(model)
        m, d = self.model, self.data
        self._latency, self._proprio_noise, self._object_noise, offset_std = runtime_terms(m)
        if offset_std > 0:  # a randomized calibration error, from its own stream (the scene stays the seed's)
            cal_rng = np.random.default_rng([seed, ENCODER_STREAM] if seed is not None else None)
            offsets = np.clip(cal_rng.normal(0, offset_std, robot.N_ACTUATORS), -2.5 * offset_std, 2.5 * offset_std)
            self.actuation = Actuation(calibration=offsets, backlash=self.actuation.backlash)
        mujoco.mj_resetData(m, d)
        d.qpos[self.world.robot_qpos_adr] = self.home - self.actuation.calibration
        self._held = self.home.copy()
        d.ctrl[self.world.actuator_ids] = self._to_ctrl(self.home)
        self.goal = self.task.reset(self.world, d, rng)
        if objects is not None:
            objects = np.asarray(objects, float).reshape(len(OBJECTS), 7)
            for name, pose in zip(OBJECTS, objects):
                self.world.set_object_pose(d, name, pose[:3], pose[3:] / np.linalg.norm(pose[3:]))
        mujoco.mj_forward(m, d)
        mujoco.mj_step(m, d, nstep=int(round(SETTLE_SECONDS / m.opt.timestep)))
        d.time = 0.0
        self._pending = deque([self.home.copy()] * self._latency)
        self._rng = rng
        self.t = 0
        if self.monitor is not None:
            self.monitor.on_reset(m, d)
        return self.observe(), {"success": False, "goal": self.goal}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Apply joint targets for one 50 ms control step; Gymnasium's five-tuple."""
        self.apply_action(action)
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        return self.after_physics()

    # The batched env runs the physics between these two halves for many scenes at once.
    def apply_action(self, action: np.ndarray) -> None:
        command = self.check_action(action)
        self._pending.append(command)
        command = self._pending.popleft()  # the command from `latency` steps ago
        # backlash: the servo's output follows its command only once the play is taken up
        self._held = np.clip(self._held, command - self.actuation.backlash, command + self.actuation.backlash)
        self.data.ctrl[self.world.actuator_ids] = self._to_ctrl(self._held)

    def after_physics(self) -> tuple[dict, float, bool, bool, dict]:
        self.t += 1
        if self.monitor is not None:
            self.monitor.on_step(self.model, self.data, CONTROL_DT)
        success = self.task.success(self.world, self.data, self.goal)
        reward = self.task.reward(self.world, self.data, self.goal)
        truncated = self.t >= self.max_steps and not success
        return self.observe(), reward, success, truncated, {"success": success, "t": self.t}

    def check_action(self, action: np.ndarray) -> np.ndarray:
        a = np.asarray(action, dtype=float)
        if a.shape != (robot.N_ACTUATORS,):
            raise ValueError(f"action must have shape ({robot.N_ACTUATORS},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite values at joints {np.flatnonzero(~np.isfinite(a)).tolist()}")
        return np.clip(a, self.world.ctrl_range[:, 0], self.world.ctrl_range[:, 1])

    # ------------------------------------------------------------------ sensing
    def observe(self) -> dict:
        d, w = self.data, self.world
        q = d.qpos[w.robot_qpos_adr] + self.actuation.calibration
        qd = d.qvel[w.robot_dof_adr].copy()
        objects = w.object_poses(d).copy()
        if self._proprio_noise > 0:
            q = q + self._rng.normal(0, self._proprio_noise, q.shape)
            qd = qd + self._rng.normal(0, 10 * self._proprio_noise, qd.shape)
        if self._object_noise > 0:
            objects[:, :3] += self._rng.normal(0, self._object_noise, (len(OBJECTS), 3))
        obs = {
            "proprio": np.concatenate([q, qd]).astype(np.float32),
            "objects": objects.astype(np.float32),
            "goal": self.task.goal_vector(self.goal),
            "task": np.int64(self.task.index),
            "context": self.context.astype(np.float32),
        }
        if self.cameras:
            obs["images"] = {c: self.render(c) for c in self.cameras}
        return obs

    def render(self, camera: str = "overview", size: tuple[int, int] | None = None) -> np.ndarray:
        """An RGB image (H, W, 3) uint8 from a named camera (offscreen; MUJOCO_GL=egl)."""
        h, w = size or self.image_size
        renderer = self._renderers.get((h, w))
        if renderer is None:
            renderer = self._renderers[(h, w)] = mujoco.Renderer(self.model, h, w)
        renderer.update_scene(self.data, camera)
        return renderer.render().copy()

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # ------------------------------------------------------------------ internals
    def _to_ctrl(self, command: np.ndarray) -> np.ndarray:
        # a servo closes its loop on its own encoder, so a calibration offset shifts the true pose
        return command - self.actuation.calibration

    def _set_model(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.world = Workcell(model)
        self.data = mujoco.MjData(model)
        self.close()  # renderers hold the old model
