"""A robot at work: a reality robot, its update agent, and a System-1 control loop at 20 Hz.

``FleetRobot(root, serial, profile, server)`` is one robot in its own folder (the update
agent's slots and state, the telemetry spool, ``runtime.json``). ``work(orders)`` runs a shift
of task orders, one episode each:

- the control loop: each control step is policy inference (and the shadow candidate's, when
  one runs) plus one step of the robot; its wall time is measured against the deadline of the
  control period (50 ms at 20 Hz) and the steps over it are counted as deadline misses. The
  simulated robot runs as fast as it can by default; ``realtime`` paces the loop to 20 Hz;
- safety: the bundle's limits are watched by the robot's controller; the first crossing stops
  the episode (a failure, and a safety-stop event);
- the battery drains with work (each control step, more when the joints move fast) and time is
  compressed: a full charge lasts ``battery_steps`` control steps. Below ``dock_below`` the
  robot finishes its episode and docks; while it charges, its update agent may install (the
  install window); it leaves the dock charged. Between orders the agent checks in, downloads
  and is told whether to run a candidate in shadow;
- wear grows with every control step (the reality robot's own model) and carries over;
- shadow mode: when the server asks, the candidate release is fetched and verified like an
  install (``Agent.prepare_shadow``) and runs on the same observations without acting; the
  per-step action divergence (RMS over the 28 joint targets, rad) is logged, and its would-be
  outcome is judged where it can be: this robot is simulated, so the same scene is replayed
  with the candidate on a twin of the robot (same serial, same wear, same seed);
- telemetry: each episode (LeRobot columns, with serial, release and outcome), each event and
  each shift or shadow report goes to the spool first and is uploaded from there
  (``academy.fleet.telemetry``), failures first.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from academy.deploy.agent import Agent, Transport, UpdateRejected, default_boot_check, write_durable
from academy.fleet.telemetry import Spool


@dataclass
class RobotConfig:
    control_hz: float = 20.0
    battery_steps: int = 6000  # control steps of work on a full charge (time compressed)
    dock_below: float = 0.2  # dock after the episode that leaves the battery below this
    charge_per_s: float = 1 / 1200  # battery share per second of (simulated) charging: full in 20 min
    realtime: bool = False  # pace the control loop to the control period
    max_episode_steps: int | None = None  # cut episodes short (tests); the task's own limit by default
    judge_shadow: bool = True  # replay each shadowed scene with the candidate on a twin of the robot
    self_test_steps: int | None = 20  # steps of the boot self-test episode after an install
    upload_every: int = 1  # flush the telemetry spool after this many episodes

    @property
    def deadline_ms(self) -> float:
        return 1000.0 / self.control_hz


@dataclass
class Order:
    task: str
    seed: int


@dataclass
class Episode:
    task: str
    seed: int
    success: bool
    steps: int
    safety_stop: dict | None
    deadline_misses: int
    step_ms: list[float]
    divergence: list[float]  # per control step, when a shadow candidate ran
    frames: dict[str, np.ndarray] | None
    speed: float  # mean joint speed, rad/s (the battery's load)
    key: str = ""  # the telemetry key it was spooled under


def run_episode(robot, policy, seed: int, limits, *, shadow=None, deadline_ms: float = 50.0,
                record: bool = False, max_steps: int | None = None, realtime: bool = False) -> Episode:
    """One episode of ``policy`` on ``robot`` under the controller's safety ``limits``."""
    from academy.data.collect import steps_to_frames
    from academy.exam.safety import KINDS
    from academy.learn.policy import env_obs_batch

    robot.enable_safety(limits)  # a fresh log per episode: the per-step check reads one record
    obs, _ = robot.reset(seed)
    policy.reset(1)
    if shadow is not None:
        shadow.reset(1)
    observations, actions, rewards, step_ms, divergence, speeds = [], [], [], [], [], []
    success, stop = False, None
    period = deadline_ms / 1000.0
    for step in range(max_steps or robot.max_steps):
        t0 = time.perf_counter()
        batch = env_obs_batch([obs])
        action = np.asarray(policy.act(batch)[0])
        if shadow is not None:
            candidate = np.asarray(shadow.act(batch)[0])
            divergence.append(float(np.sqrt(np.mean((candidate - action) ** 2))))
        if record:
            observations.append(obs)
            actions.append(action)
        obs, reward, terminated, truncated, info = robot.step(action)
        dt = time.perf_counter() - t0
        step_ms.append(dt * 1e3)
        speeds.append(float(np.mean(np.abs(obs["proprio"][len(obs["proprio"]) // 2:]))))
        rewards.append(reward)
        if realtime and dt < period:
            time.sleep(period - dt)
        crossed = {k: v for k, v in robot.safety_log()[-1].items() if k in KINDS and v}
        if crossed:  # the controller stops the robot: a failed episode and a safety stop
            stop = {"seed": seed, "step": step, "crossed": crossed}
            break
        if terminated or truncated:
            success = bool(info["success"])
            break
    frames = steps_to_frames(observations, actions, rewards) if record else None
    return Episode(robot.task.name, seed, success, len(step_ms), stop, sum(t > deadline_ms for t in step_ms),
                   step_ms, divergence, frames, float(np.mean(speeds)) if speeds else 0.0)


def _tally() -> dict:
    return {"episodes": 0, "successes": 0, "safety_stops": 0, "misses": 0, "stops": []}


@dataclass
class RuntimeState:
    battery: float = 1.0
    usage_steps: int = 0
    episodes: int = 0
    control_steps: int = 0
    deadline_misses: int = 0
    docks: int = 0
    charge_seconds: float = 0.0


@dataclass
class ShiftSummary:
    serial: str
    episodes: int = 0
    successes: int = 0
    safety_stops: int = 0
    control_steps: int = 0
    deadline_misses: int = 0
    step_ms_p50: float = 0.0
    step_ms_p99: float = 0.0
    docks: int = 0
    installs: list = field(default_factory=list)  # [(release, outcome)]
    releases: dict = field(default_factory=dict)  # release -> [successes, episodes]
    shadow: dict = field(default_factory=dict)  # release -> {steps, divergence_mean, judged, would_be_successes}
    battery: float = 1.0
    wear_steps: int = 0
    upload: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class FleetRobot:
    def __init__(self, root: str | Path, serial: str, profile: str, server: str,
                 config: RobotConfig | None = None, trusted_root: bytes | None = None,
                 transport: Transport | None = None):
        self.root = Path(root)
        self.serial, self.profile = serial, profile
        self.cfg = config or RobotConfig()
        if not (self.root / "state.json").exists():
            if trusted_root is None:
                raise FileNotFoundError(f"{self.root} is not a provisioned robot: give the repository's root metadata")
            Agent.provision(self.root, trusted_root)
        self.transport = transport or Transport(server)
        steps = self.cfg.self_test_steps
        self.agent = Agent(self.root, serial, profile, self.transport,
                           boot_check=lambda slot, prof: default_boot_check(slot, prof, steps))
        self.spool = Spool(self.root)
        self.state_path = self.root / "runtime.json"
        self.rs = RuntimeState(**json.loads(self.state_path.read_text())) if self.state_path.exists() else RuntimeState()
        self._loaded: tuple[int, object, object, list] | None = None  # (release, policy, limits, skills)
        self._shadow: tuple[int, object] | None = None
        self.update_log: list[list] = []  # [release, outcome] of every install decision since start
        self.last_agent_error = ""

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        write_durable(self.state_path, json.dumps(asdict(self.rs)).encode())

    def _event(self, kind: str, release: int, **detail) -> None:
        self.spool.add_event(self.serial, kind, release, detail)

    def _policy(self):
        """The committed release's policy, safety limits and examined skills (reloaded after an install)."""
        from academy.exam.safety import SafetyLimits
        from academy.learn.policy import Policy

        if self._loaded is not None and self._loaded[0] == self.agent.st.committed_release:
            return self._loaded  # verified when it was loaded; the slot changes only with the release
        release, slot = self.agent.running()
        if slot is None:
            return 0, None, None, []
        if self._loaded is None or self._loaded[0] != release:
            skills = [s["name"] for s in json.loads((slot / "skills.json").read_text())]
            self._loaded = (release, Policy.load(slot / "policy"), SafetyLimits.load(slot / "safety_limits.json"), skills)
        return self._loaded

    # ------------------------------------------------------------------ the update agent's moments
    def _agent(self, charging: bool) -> None:
        """Let the agent check in and do what it may (install only on the charger); log what it did."""
        before = list(self.agent.st.history)
        try:
            self.agent.run_until_idle(charging=charging, battery=self.rs.battery)
        except Exception as e:  # noqa: BLE001 - the server may be down: the robot keeps working
            self.last_agent_error = f"{type(e).__name__}: {e}"
        after = self.agent.st.history  # bounded: new entries are those past the old tail
        new = after[len(before):] if len(after) > len(before) else (after[-1:] if after != before else [])
        for release, outcome in new:
            self.update_log.append([release, outcome])
            kind = {"committed": "install", "rolled back": "rollback"}.get(outcome, "rejected")
            self._event(kind, release, reason=self.agent.st.last_error if kind != "install" else "")
        offer = self.agent.shadow_offer
        if offer and offer > self.agent.st.committed_release:
            if self._shadow is None or self._shadow[0] != offer:
                self._load_shadow(offer)
        elif self._shadow is not None:
            self._shadow = None  # the server no longer asks for it (cleared, installed or aborted)

    def _load_shadow(self, release: int) -> None:
        from academy.learn.policy import Policy

        try:
            slot = self.agent.prepare_shadow(release)
            self._shadow = (release, Policy.load(slot / "policy"))
            self._event("shadow_start", self.agent.st.committed_release, candidate=release)
        except (UpdateRejected, OSError) as e:
            self._event("rejected", release, reason=f"shadow: {e}")
        except Exception as e:  # noqa: BLE001 - no shadow this time; the server asks again at the next check-in
            self.last_agent_error = f"shadow: {type(e).__name__}: {e}"

    def dock(self) -> None:
        """Go to the dock, charge to full (simulated time), install what is waiting."""
        self.rs.docks += 1
        seconds = (1.0 - self.rs.battery) / self.cfg.charge_per_s
        self.rs.charge_seconds += seconds
        self._event("dock", self.agent.st.committed_release, battery=round(self.rs.battery, 3),
                    charge_seconds=round(seconds, 1))
        self.rs.battery = 1.0  # the agent's window opens while it charges; it reports full at check-in
        self._agent(charging=True)
        self._save()

    # ------------------------------------------------------------------ a shift
    def work(self, orders: list[Order], on_episode: Callable[[Episode], None] | None = None) -> ShiftSummary:
        import torch

        from academy.sim.reality import RealityRobot

        torch.set_num_threads(1)
        out = ShiftSummary(self.serial)
        log_at_start = len(self.update_log)
        release, policy, limits, skills = self._policy()
        if policy is None:  # a new robot: to the dock for its first release
            self.dock()
            out.docks += 1
            release, policy, limits, skills = self._policy()
            if policy is None:
                raise RuntimeError(f"{self.serial} has no release installed and the server offered none "
                                   f"({self.last_agent_error or 'no rollout for ' + self.profile})")
        unknown = sorted({o.task for o in orders} - set(skills))
        if unknown:  # refuse the shift before any work: a release does only the skills its exam covered
            raise ValueError(f"release {release} has no skill {unknown[0]!r} (it has {skills})")
        robot = RealityRobot(self.serial, orders[0].task if orders else "handover", usage_steps=self.rs.usage_steps)
        all_ms: list[float] = []
        pending = _tally()  # the episodes since the last shift report
        try:
            for i, order in enumerate(orders):
                self._agent(charging=False)  # check in between orders: downloads, shadow offers
                release, policy, limits, skills = self._policy()
                if robot.task.name != order.task:
                    robot.set_task(order.task)
                if order.task not in skills:  # a release does only the skills its exam covered
                    raise ValueError(f"release {release} has no skill {order.task!r} (it has {skills})")
                shadow = self._shadow[1] if self._shadow and order.task in self._shadow[1].tasks else None
                ep = run_episode(robot, policy, order.seed, limits, shadow=shadow, deadline_ms=self.cfg.deadline_ms,
                                 record=True, max_steps=self.cfg.max_episode_steps, realtime=self.cfg.realtime)
                self._account(ep, robot, out, all_ms)
                ep.key = self.spool.add_episode(ep.frames, {"serial": self.serial, "release": release, "task": ep.task,
                                                   "seed": ep.seed, "outcome": "success" if ep.success else "failure"})
                if ep.safety_stop:
                    self._event("safety_stop", release, **ep.safety_stop)
                if ep.deadline_misses:
                    self._event("deadline_miss", release, steps=ep.deadline_misses, of=ep.steps,
                                worst_ms=round(max(ep.step_ms), 2))
                pending["episodes"] += 1
                pending["successes"] += ep.success
                pending["safety_stops"] += bool(ep.safety_stop)
                pending["misses"] += ep.deadline_misses
                if ep.safety_stop:
                    pending["stops"].append(ep.safety_stop)
                out.releases.setdefault(release, [0, 0])
                out.releases[release][0] += ep.success
                out.releases[release][1] += 1
                if shadow is not None:
                    self._shadow_report(ep, robot, order, out)
                if on_episode:
                    on_episode(ep)
                if self.rs.battery < self.cfg.dock_below or i == len(orders) - 1:
                    self._shift_report(release, pending)  # evidence for the rollout before any install
                    pending = _tally()
                if self.rs.battery < self.cfg.dock_below:
                    self.dock()
                    out.docks += 1
                if (i + 1) % self.cfg.upload_every == 0:
                    self._upload(out)
        finally:
            self.rs.usage_steps = robot.usage_steps
            self._save()
            robot.close()
        self._upload(out)
        out.installs = self.update_log[log_at_start:]
        out.battery, out.wear_steps = self.rs.battery, self.rs.usage_steps
        if all_ms:
            out.step_ms_p50, out.step_ms_p99 = (float(np.percentile(all_ms, q)) for q in (50, 99))
        return out

    def _account(self, ep: Episode, robot, out: ShiftSummary, all_ms: list[float]) -> None:
        self.rs.battery = max(0.0, self.rs.battery - ep.steps * (0.6 + 0.4 * min(2.0, ep.speed / 0.3))
                              / self.cfg.battery_steps)
        self.rs.usage_steps = robot.usage_steps
        self.rs.episodes += 1
        self.rs.control_steps += ep.steps
        self.rs.deadline_misses += ep.deadline_misses
        out.episodes += 1
        out.successes += ep.success
        out.safety_stops += bool(ep.safety_stop)
        out.control_steps += ep.steps
        out.deadline_misses += ep.deadline_misses
        all_ms.extend(ep.step_ms)
        self._save()

    def _shift_report(self, release: int, p: dict) -> None:
        if p["episodes"]:
            self.spool.add_report({"serial": self.serial, "release": release, "kind": "shift", "ok": True,
                                   "episodes": p["episodes"], "successes": p["successes"],
                                   "safety_stops": p["safety_stops"], "deadline_misses": p["misses"],
                                   "detail": json.dumps(p["stops"][:5])})

    def _shadow_report(self, ep: Episode, robot, order: Order, out: ShiftSummary) -> None:
        """Log the candidate's divergence on this episode, and judge its would-be outcome on a twin."""
        release, candidate = self._shadow
        judged = would = 0
        if self.cfg.judge_shadow:
            from academy.sim.reality import RealityRobot

            twin = RealityRobot(self.serial, order.task, usage_steps=robot.usage_steps - ep.steps)
            try:
                alt = run_episode(twin, candidate, order.seed, self._loaded[2], deadline_ms=self.cfg.deadline_ms,
                                  max_steps=self.cfg.max_episode_steps)
            finally:
                twin.close()
            judged, would = 1, int(alt.success)
        mean_div = float(np.mean(ep.divergence)) if ep.divergence else 0.0
        self.spool.add_report({"serial": self.serial, "release": release, "kind": "shadow", "ok": True,
                               "episodes": judged, "successes": would, "steps": len(ep.divergence),
                               "divergence": mean_div,
                               "detail": json.dumps({"task": ep.task, "seed": ep.seed, "active_success": ep.success,
                                                     "divergence_p95": float(np.percentile(ep.divergence, 95))
                                                     if ep.divergence else 0.0})})
        s = out.shadow.setdefault(release, {"steps": 0, "divergence_sum": 0.0, "judged": 0, "would_be_successes": 0,
                                            "active_successes": 0})
        s["steps"] += len(ep.divergence)
        s["divergence_sum"] += float(np.sum(ep.divergence))
        s["judged"] += judged
        s["would_be_successes"] += would
        s["active_successes"] += int(ep.success)

    # ------------------------------------------------------------------ telemetry
    def upload(self) -> dict:
        return self.spool.flush(self.transport.http, self.transport.url)

    def _upload(self, out: ShiftSummary) -> None:
        r = self.upload()
        for k in ("sent", "duplicates", "rejected"):
            out.upload[k] = out.upload.get(k, 0) + r[k]
        out.upload["left"], out.upload["error"] = r["left"], r["error"]


def _shift_job(args: tuple) -> dict:
    root, serial, profile, server, cfg, trusted_root, orders = args
    bot = FleetRobot(root, serial, profile, server, cfg, trusted_root=trusted_root)
    return bot.work(orders).to_dict()


FLEET_BACKENDS = ("local", "ray")


def _local_shifts(jobs: list[tuple], workers: int) -> Iterator[dict]:
    """``_shift_job`` for each job in spawned processes, ``workers`` at a time; summaries as they finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    spawn = multiprocessing.get_context("spawn")  # the caller may hold torch threads: fork could hang
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        for fut in as_completed([pool.submit(_shift_job, j) for j in jobs]):
            yield fut.result()


def _ray_shifts(jobs: list[tuple], workers: int) -> Iterator[dict]:
    """``_shift_job`` for each job as a Ray task (one CPU each), at most ``workers`` in flight; summaries
    as they finish. Uses the caller's Ray when it has one, else joins the cluster ``RAY_ADDRESS``
    names, else starts a local instance with ``workers`` CPUs; Ray started here is shut down here."""
    import os

    try:
        import ray
    except ImportError:
        raise ValueError("backend 'ray' needs Ray: pip install -e '.[ray]'") from None

    started = not ray.is_initialized()
    if started and os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, configure_logging=False)  # a cluster: its nodes bring their own CPUs
    elif started:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # a node's own environment may say otherwise: the robot renders offscreen (its torch threads: work() sets 1)
    task = ray.remote(num_cpus=1, max_retries=0, runtime_env={"env_vars": {"MUJOCO_GL": "egl"}})(_shift_job)
    waiting, running = list(jobs), []
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(task.remote(waiting.pop(0)))
            done, running = ray.wait(running, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in running:  # a failed robot (or ^C) ends the shift: robots at work stop, work() saves their state
            ray.cancel(ref)
        if started:
            ray.shutdown()


def run_fleet(root: str | Path, serials: list[str], orders: dict[str, list[Order]], server: str,
              profile: str = "ah1-sim", config: RobotConfig | None = None, trusted_root: bytes | None = None,
              workers: int = 2, on_robot: Callable[[dict], None] | None = None, backend: str = "local") -> list[dict]:
    """A shift for every robot of the fleet (``workers`` at a time): robot folders under ``root``;
    ``orders[serial]`` its orders. ``backend`` ``"local"`` runs each robot in its own spawned
    process, ``"ray"`` as a Ray task (a local instance, or the cluster ``RAY_ADDRESS`` names).
    ``on_robot`` gets each summary as its robot finishes. Returns the shift summaries by serial."""
    if backend not in FLEET_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(FLEET_BACKENDS)}, got '{backend}'")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    jobs = [(str(Path(root) / s), s, profile, server, config or RobotConfig(), trusted_root, orders[s]) for s in serials]
    out = []
    for summary in (_ray_shifts if backend == "ray" else _local_shifts)(jobs, workers):
        out.append(summary)
        if on_robot:
            on_robot(summary)
    return sorted(out, key=lambda s: s["serial"])
