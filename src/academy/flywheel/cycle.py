"""The flywheel: each cycle makes a policy from everything the workspace holds, sends it through
the exam and a staged rollout to a fleet of physics robots, and takes the fleet's shift back as
the next cycle's data.

One run (``run_flywheel``) lives in a run folder: a release home (development keys, signed
repository, registry, fleet database, telemetry), the update server on loopback, the robots'
folders, and one folder per cycle. Stages talk through files only:

- ground, once: expert demonstrations per task (DART noise, encoder offsets drawn per episode: the
  recipe of docs/learn.md), kept in the workspace and reused by later runs; and people filmed by
  the helmet rig, watched into demonstrations (academy.watch; those whose replay succeeds);
- learn: one policy on the demos, the watched demos, the fleet's successful episodes and the
  corrections of its failures (drawn ``correction_weight`` times as often), and dreams where the
  physics confirmed them (below);
- practice: residual PPO on it (the learned policy is kept unless a selection evaluation beats it);
- dream: a world model fitted on the training set dreams variations of one successful episode
  per task; kept dreams are replayed in the physics, and they join the next training only if at
  least half of those replayed succeed there;
- exam and release: every skill on fixed scenes, nominal and held-out reality robots, under the
  flywheel's safety limits; the gate against the current release; a signed release;
- deploy: a staged rollout (a fleet's first release goes to every robot: there is nothing to
  compare it with). Robots dock (the install window), the robots let in install, and short
  rounds of work give the rollout its evidence, until it is done or aborted;
- shift: every robot works ``orders`` orders (tasks in turn, fresh scene seeds each cycle);
  fleet success per cycle is this shift's;
- ingest and corrections: the inbox into the fleet dataset; each failure redone by the expert on
  the same robot and scene.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from academy.exam.safety import SafetyLimits

# Scene seeds of the fleet's work, apart from demonstrations (0..), evaluation (100000..),
# practice selection (200000..) and the exam (300000.., 30000..).
SHIFT_SEED = 400000
ROLLOUT_SEED = 600000
DEMO_NOISE = 0.005
DEMO_RANDOMIZATION = {"encoder_offset": (0.0, 0.01)}
# The exam's default limits refuse every learned handover policy and the scripted expert itself
# on the reality robots (hands up to 6 cm into each other in the handover; wrists at their stops,
# README). The flywheel examines under these instead: hands may meet 8 cm deep, and a joint may
# press up to 10 mrad past its stop (MuJoCo's joint limits are soft: the learned handover policy
# pushes a wrist 6.6 mrad past its stop on reality robots with encoder offsets); torque, contact
# force and person-zone speed keep the exam's limits.
FLYWHEEL_LIMITS = SafetyLimits(joint_limit_margin=-0.01, self_clearance=-0.08)


class FlywheelStopped(RuntimeError):
    """The flywheel cannot go on (the first release refused); flywheel.json says what was measured."""


@dataclass
class FlywheelConfig:
    workspace: str = "academy-data"
    cycles: int = 3
    tasks: tuple[str, ...] = ("handover", "place_part")
    demos: int = 100  # expert demonstrations per task to start from
    human_episodes: int = 2  # people filmed per task and watched (0: no watch stage)
    learn_minutes: float = 5.0
    learn_steps: int | None = None  # a step budget instead (the same training however busy the machine is)
    warm_start: bool = False  # True: each cycle goes on training the last cycle's policy (docs/flywheel.md)
    practice_minutes: float = 0.5  # 0: no practice stage
    dream_variations: int = 100  # per task (0: no dream stage)
    dream_fit_minutes: float = 1.0
    dream_check: int = 20  # kept dreams per task replayed in the physics
    exam_episodes: int = 12  # nominal scenes per skill
    exam_reality_episodes: int = 12
    robots: int = 8
    orders: int = 24  # per robot per shift
    workers: int = 2
    backend: str = "local"  # or "ray": the fleet's robots as Ray tasks
    correction_weight: float = 3.0
    canary_share: float = 0.25
    min_episodes: int = 6  # per side, before the rollout judges
    rollout_orders: int = 3  # orders per robot per round of rollout work
    max_rollout_rounds: int = 6
    profile: str = "ah1-sim"
    limits: SafetyLimits = field(default_factory=lambda: FLYWHEEL_LIMITS)
    seed: int = 0

    def check(self) -> None:
        from academy.sim.tasks import REGISTRY

        unknown = [t for t in self.tasks if t not in REGISTRY]
        if unknown or not self.tasks:
            raise ValueError(f"unknown task(s) {unknown}; known: {sorted(REGISTRY)}" if unknown else "no tasks given")
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', got {self.backend!r}")
        for name in ("cycles", "demos", "robots", "orders", "workers", "min_episodes", "rollout_orders",
                     "exam_episodes", "max_rollout_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learn_minutes <= 0:
            raise ValueError(f"learn_minutes must be above 0, got {self.learn_minutes}")
        if self.learn_steps is not None and self.learn_steps < 1:
            raise ValueError(f"learn_steps must be at least 1, got {self.learn_steps}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["limits"] = self.limits.to_dict()
        return d


class Stages:
    """Progress of the stages: ``bar(description, total)`` gives ``(advance, update)``; with no
    rich ``Progress`` they do nothing."""

    def __init__(self, progress=None, log: Callable[[str], None] | None = None):
        self.progress, self.log = progress, log or (lambda _msg: None)

    @contextmanager
    def bar(self, description: str, total: float | None = None):
        if self.progress is None:
            yield (lambda n=1: None), (lambda **kw: None)
            return
        task = self.progress.add_task(description, total=total)
        try:
            yield (lambda n=1: self.progress.advance(task, n)), (lambda **kw: self.progress.update(task, **kw))
        finally:
            self.progress.update(task, completed=self.progress.tasks[task].total or 1,
                                 total=self.progress.tasks[task].total or 1)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a success rate."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rise(before: list[int], after: list[int]) -> dict:
    """The change in success rate from ``before`` to ``after`` ([successes, episodes] each), in
    points, with the one-sided p that it did not rise (the gate's test with no tolerance: a pooled
    two-proportion z-test)."""
    from academy.exam.gate import drop_test

    (a, n), (b, m) = before, after
    if not n or not m:
        return {"points": None, "p": None}
    _, p = drop_test(b, m, a, n, 0.0)  # H1: the rate after exceeds the rate before
    return {"points": round(100 * (b / m - a / n), 1), "p": round(p, 4)}


# ---------------------------------------------------------------------- ground (once per workspace)
def ground(cfg: FlywheelConfig, ui: Stages) -> dict:
    """Expert demonstrations and watched human demonstrations, made once and reused."""
    from academy.data import Dataset
    from academy.data.collect import collect
    from academy.sim.randomize import RandomizationConfig

    ws = Path(cfg.workspace)
    demos = ws / "datasets" / f"flywheel-demos-{cfg.demos}"
    randomization = RandomizationConfig.from_dict({k: list(v) for k, v in DEMO_RANDOMIZATION.items()}).only(
        *DEMO_RANDOMIZATION)
    for task in cfg.tasks:
        have = len(Dataset(demos).select(task=task)) if (demos / "meta/info.json").exists() else 0
        if have < cfg.demos:
            with ui.bar(f"ground: {task} expert demonstrations", cfg.demos) as (advance, update):
                update(completed=have)
                collect(task, cfg.demos - have, demos, first_seed=have, action_noise=DEMO_NOISE,
                        randomization=randomization, workers=cfg.workers, on_episode=lambda s, ok: advance())
    out = {"demos": str(demos), "watched": None}
    if cfg.human_episodes:
        out["watched"], out["watch"] = _watch(cfg, ws, ui)
    return out


def _watch(cfg: FlywheelConfig, ws: Path, ui: Stages) -> tuple[str | None, dict]:
    from academy.data import Dataset
    from academy.human.record import record_many
    from academy.watch.pipeline import watch

    human = ws / "human" / f"flywheel-{cfg.human_episodes}"
    watched = ws / "datasets" / f"flywheel-watched-{cfg.human_episodes}"
    report_path = watched.parent / f"{watched.name}.report.json"
    if not report_path.exists():
        for task in cfg.tasks:
            if not (human / task).exists():
                with ui.bar(f"watch: filming people doing {task}", 1) as (advance, _):
                    record_many(human / task, task, cfg.human_episodes, per_recording=1,
                                workers=cfg.workers)
                    advance()
        reports = {}
        with ui.bar("watch: videos -> robot demonstrations", None) as (advance, _):
            for task in cfg.tasks:
                reports[task] = watch(human / task, watched, on_recording=lambda _f: advance()).to_dict()
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(reports, indent=1, default=str))
    report = json.loads(report_path.read_text())
    kept = Dataset(watched).num_episodes if (watched / "meta/info.json").exists() else 0
    return (str(watched) if kept else None), {
        "recordings": str(human), "kept_demos": kept, "report": str(report_path),
        "replayed": {t: [sum(e["outcome"] == "success" for e in r["episodes"]), len(r["episodes"])] for t, r in report.items()},
        "seconds": round(sum(r["wall_seconds"] for r in report.values()), 1)}


# ---------------------------------------------------------------------- one cycle's stages
def training_set(parts: list[str], out: Path) -> dict:
    """Every episode of ``parts`` (datasets that exist) merged into ``out``; counts by source."""
    from academy.data import Dataset, merge

    present = [p for p in parts if p and (Path(p) / "meta/info.json").exists() and Dataset(p).num_episodes]
    ds = merge(present, out)
    eps = ds.episodes
    ok = eps[eps["academy/outcome"] == "success"]
    return {"dataset": str(out), "episodes": int(len(eps)),
            "successes_by_source": {str(k): int(v) for k, v in ok["academy/source"].value_counts().items()}}


def learn(cfg: FlywheelConfig, data: str, out: Path, ui: Stages, start: str | None = None) -> dict:
    """One policy on ``data`` (corrections drawn more often); from ``start``'s weights if given."""
    from academy.learn.train import TrainConfig, train

    with ui.bar("learn" + (" (going on from the last cycle's policy)" if start else ""), 100) as (_, update):
        steps = cfg.learn_steps is not None  # a step budget: time is no limit
        info = train(data, out, TrainConfig(max_minutes=10**6 if steps else cfg.learn_minutes,
                                            max_steps=cfg.learn_steps if steps else 10**9, seed=cfg.seed,
                                            source_weights={"correction": cfg.correction_weight}, init_from=start),
                     tasks=list(cfg.tasks), on_step=lambda s, loss, done: update(
                         completed=int(100 * done), description=f"learn: step {s}, loss {loss:.3f}"))
    return {"policy": str(out), "from": start, "steps": info["steps"], "frames": info["frames"], "episodes": info["episodes"],
            "final_loss": info["final_loss"], "val_loss": info["val_loss"]}


def practice(cfg: FlywheelConfig, policy: str, out: Path, ui: Stages) -> dict:
    from academy.practice.run import PracticeConfig, practice as run_practice

    budget = int(60 * cfg.practice_minutes)
    with ui.bar("practice", budget) as (_, update):
        s = run_practice(PracticeConfig(policy=policy, out=str(out), tasks=list(cfg.tasks),
                                        minutes=cfg.practice_minutes, workers=cfg.workers, seed=cfg.seed),
                         on_update=lambda row: update(completed=min(budget, int(row["seconds"])),
                                                      description=f"practice: update {row['update']}"))
    return {"policy": str(out / "policy"), "updates": s["updates"], "env_steps": s["env_steps"],
            "kept_update": s["best"]["update"]}


def dream(cfg: FlywheelConfig, policy: str, data: str, out: Path, ui: Stages) -> dict:
    """A world model fitted on the training set; variations of one successful episode per task,
    dreamed with ``policy``; the kept ones replayed in the physics."""
    from academy.data import Dataset
    from academy.dream.fit import FitConfig, fit
    from academy.dream.variations import VariationConfig, check_in_physics, dream as run_dream

    model = out / "world-model"
    with ui.bar("dream: fit the world model", 100) as (_, update):
        info = fit([data], model, FitConfig(max_minutes=cfg.dream_fit_minutes, seed=cfg.seed),
                   on_step=lambda s, loss, done: update(completed=int(100 * done)))
    ds = Dataset(data)
    res: dict = {"world_model": str(model), "fit_steps": info["steps"], "tasks": {}, "dataset": str(out / "dreams")}
    replayed = succeeded = 0
    for task in cfg.tasks:
        sources = ds.select(task=task, outcome="success")
        if not sources:
            res["tasks"][task] = {"skipped": "no successful episode to vary"}
            continue
        with ui.bar(f"dream: {task} variations, then replayed in physics", None):
            summary = run_dream(model, policy, data, sources[0], out / "dreams",
                                VariationConfig(variations=cfg.dream_variations, seed=cfg.seed))
            physics = check_in_physics(summary, cfg.dream_check, workers=cfg.workers)["kept"] if summary["kept"] else \
                {"replayed": 0, "succeeded": 0}
        replayed += physics["replayed"]
        succeeded += physics["succeeded"]
        res["tasks"][task] = {"variations": summary["variations"], "kept": summary["kept"],
                              "written": summary["written"], "physics_replayed": physics["replayed"],
                              "physics_succeeded": physics["succeeded"]}
    res["physics_share"] = succeeded / replayed if replayed else None
    res["used_for_training"] = bool(replayed) and succeeded / replayed >= 0.5
    return res


def exam_and_release(cfg: FlywheelConfig, home, policy: str, note: str, ui: Stages) -> dict:
    from academy.exam.exam import ExamConfig
    from academy.release.publish import GateRefused

    exam = ExamConfig(episodes=cfg.exam_episodes, reality_episodes=cfg.exam_reality_episodes, limits=cfg.limits,
                      workers=cfg.workers)
    with ui.bar("exam: every skill, nominal and reality robots", None) as (_, update):
        try:
            pub = home.publish(policy, cfg=exam, note=note,
                               on_episodes=lambda done, total: update(completed=done, total=total))
        except GateRefused as e:
            return {"released": None, "reasons": e.decision.reasons, "exam": _exam_rates(e.report)}
    return {"released": pub.release, "exam": _exam_rates(pub.exam), "delta_ratio": pub.delta["ratio"]}


def _exam_rates(report: dict) -> dict:
    return {skill: {part: [r[part]["successes"], r[part]["episodes"]] for part in ("nominal", "reality")}
            for skill, r in report["skills"].items()}


# ---------------------------------------------------------------------- the fleet
class Fleet:
    """The run's robots: their folders, the update server's URL, docking and shifts."""

    def __init__(self, cfg: FlywheelConfig, root: Path, url: str, trusted_root: bytes):
        self.cfg, self.root, self.url, self.trusted_root = cfg, root, url, trusted_root
        self.serials = [f"AH1-{n:04d}" for n in range(1, cfg.robots + 1)]

    def orders(self, first_seed: int, per_robot: int) -> dict:
        from academy.fleet.robot import Order

        tasks = self.cfg.tasks
        return {s: [Order(tasks[k % len(tasks)], first_seed + i * per_robot + k) for k in range(per_robot)]
                for i, s in enumerate(self.serials)}

    def dock_all(self) -> dict[str, int | None]:
        """Every robot at the dock: its agent checks in and installs what it is offered."""
        from academy.fleet.robot import FleetRobot, RobotConfig

        out = {}
        for s in self.serials:
            robot = FleetRobot(self.root / s, s, self.cfg.profile, self.url, RobotConfig(),
                               trusted_root=self.trusted_root)
            robot.dock()
            out[s] = robot.agent.st.committed_release
        return out

    def work(self, first_seed: int, per_robot: int, ui: Stages, label: str) -> list[dict]:
        from academy.fleet.robot import run_fleet

        with ui.bar(label, len(self.serials)) as (advance, _):
            return run_fleet(self.root, self.serials, self.orders(first_seed, per_robot), self.url, self.cfg.profile,
                             trusted_root=self.trusted_root, workers=self.cfg.workers,
                             on_robot=lambda _s: advance(), backend=self.cfg.backend)


def deploy(cfg: FlywheelConfig, fleet: Fleet, release: int, first: bool, cycle: int, ui: Stages) -> dict:
    """A staged rollout of ``release``, worked through rounds of dock and work until it ends."""
    import httpx

    body = {"release": release, "profile": cfg.profile, "canary_share": 1.0 if first else cfg.canary_share,
            "min_episodes": cfg.min_episodes, "safety_stops": "rate"}
    r = httpx.post(f"{fleet.url}/v1/rollouts", json=body, timeout=120)
    if r.status_code >= 400:
        raise RuntimeError(f"the update server refused the rollout of release {release}: {r.text}")
    rid = r.json()["id"]
    rounds = []
    st = r.json()
    with ui.bar(f"deploy: rollout of release {release}", cfg.max_rollout_rounds) as (advance, update):
        for k in range(cfg.max_rollout_rounds):
            installed = fleet.dock_all()
            st = httpx.get(f"{fleet.url}/v1/rollouts/{rid}", timeout=120).json()
            row = {"installed": installed, "state": st["state"], "cohort": st["cohort"]}
            if st["state"] == "running":
                seed = ROLLOUT_SEED + cycle * 10000 + k * 1000
                summaries = fleet.work(seed, cfg.rollout_orders, ui, f"deploy: round {k + 1} of work")
                row["episodes"] = sum(s["episodes"] for s in summaries)
                st = httpx.get(f"{fleet.url}/v1/rollouts/{rid}", timeout=120).json()
            rounds.append(row)
            advance()
            update(description=f"deploy: rollout of release {release}: {st['state']}, cohort {st['cohort'] + 1} "
                               f"of {len(st['bounds'])}")
            if st["state"] != "running":
                break
    installed = fleet.dock_all()  # the night's charge: the last cohort (or a rollback) installs
    return {"rollout": rid, "state": st["state"], "reason": st["reason"], "rounds": rounds, "installed": installed,
            "updated_success": st["updated_success"], "baseline_success": st["baseline_success"]}


def shift_results(fleet_dataset: str, first_seed: int, n: int) -> dict:
    """Success per task and per release of the fleet episodes with scene seeds in [first_seed, first_seed + n)."""
    from academy.data import Dataset

    eps = Dataset(fleet_dataset).episodes
    eps = eps[(eps["academy/seed"] >= first_seed) & (eps["academy/seed"] < first_seed + n)]
    win = eps["academy/outcome"] == "success"
    by = lambda col: {str(k): [int(win[g.index].sum()), int(len(g))] for k, g in eps.groupby(col)}  # noqa: E731
    return {"all": [int(win.sum()), int(len(eps))], "tasks": by("academy/task"), "releases": by("academy/release")}


def plot(cycles: list[dict], path: Path) -> Path:
    """Fleet success per cycle, overall and per task, with 95% Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    xs = [c["cycle"] for c in cycles]
    series = {"fleet (all tasks)": [c["fleet"]["all"] for c in cycles]}
    for task in dict.fromkeys(t for c in cycles for t in c["fleet"]["tasks"]):
        series[task] = [c["fleet"]["tasks"].get(task, [0, 0]) for c in cycles]
    for i, (name, rows) in enumerate(series.items()):
        p = [w / n if n else float("nan") for w, n in rows]
        lo, hi = zip(*(wilson(w, n) for w, n in rows))
        ax.errorbar([x + 0.04 * (i - 1) for x in xs], p, yerr=[[a - b for a, b in zip(p, lo)], [b - a for a, b in zip(p, hi)]],
                    marker="o", capsize=3, lw=2.2 if i == 0 else 1.2, label=name)
    for c in cycles:  # which release the shift ran (a refused candidate leaves the fleet on the last)
        w, n = c["fleet"]["all"]
        ax.annotate("release " + ", ".join(sorted(c["fleet"]["releases"])), (c["cycle"], w / n if n else 0),
                    textcoords="offset points", xytext=(0, -22), ha="center", fontsize=8, color="0.3")
    ax.set_xticks(xs)
    ax.set_xlabel("cycle")
    ax.set_ylabel("success in the fleet's shift")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Fleet success per cycle ({cycles[-1]['fleet']['all'][1]} episodes a shift)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- the run
def run_flywheel(cfg: FlywheelConfig, run_dir: str | Path, ui: Stages | None = None) -> dict:
    """``cfg.cycles`` cycles in ``run_dir``; returns (and writes to run_dir/flywheel.json) the summary."""
    from academy.deploy.server import ServerThread, create_app
    from academy.fleet.learnset import corrections
    from academy.fleet.telemetry import TelemetryStore
    from academy.release.publish import ReleaseHome

    cfg.check()
    ui = ui or Stages()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"config": cfg.to_dict(), "run": str(run_dir), "cycles": []}
    t0 = time.time()
    summary["ground"] = ground(cfg, ui)
    home = ReleaseHome(run_dir / "releases")
    if not home.signing.initialized:
        home.init()
    fleet_data, fixes = home.home / "fleet" / "episodes", home.home / "fleet" / "corrections"
    dreams: list[str] = []
    with ServerThread(create_app(home.home)) as server:
        fleet = Fleet(cfg, run_dir / "robots", server.url, home.signing.trusted_root())
        for cycle in range(1, cfg.cycles + 1):
            c0 = time.time()
            here = run_dir / "cycles" / str(cycle)
            row: dict = {"cycle": cycle, "stage_seconds": {}}

            def stage(name: str, fn, *args):
                s0 = time.time()
                out = fn(*args)
                row["stage_seconds"][name] = round(time.time() - s0 + row["stage_seconds"].get(name, 0.0), 1)
                return out

            ui.log(f"cycle {cycle} of {cfg.cycles}")
            row["data"] = stage("data", training_set, [summary["ground"]["demos"], summary["ground"]["watched"], str(fleet_data),
                                        str(fixes), *dreams], here / "train")
            start = summary["cycles"][-1]["learn"]["policy"] if cfg.warm_start and summary["cycles"] else None
            row["learn"] = stage("learn", learn, cfg, row["data"]["dataset"], here / "policy", ui, start)
            candidate = row["learn"]["policy"]
            if cfg.practice_minutes > 0:
                row["practice"] = stage("practice", practice, cfg, candidate, here / "practice", ui)
                candidate = row["practice"]["policy"]
            if cfg.dream_variations > 0:
                row["dream"] = stage("dream", dream, cfg, candidate, row["data"]["dataset"], here / "dream", ui)
                if row["dream"]["used_for_training"]:
                    dreams.append(row["dream"]["dataset"])
            previous = home.registry.current()
            row["release"] = stage("exam_and_release", exam_and_release, cfg, home, candidate, f"flywheel cycle {cycle}", ui)
            if row["release"]["released"]:
                row["deploy"] = stage("deploy", deploy, cfg, fleet, row["release"]["released"], previous is None, cycle, ui)
            elif previous is None:
                summary["stopped"] = ("the first release was refused by the gate, so the fleet has nothing to run: "
                                      + "; ".join(row["release"]["reasons"]))
                summary["cycles"].append(row)
                (run_dir / "flywheel.json").write_text(json.dumps(summary, indent=1, default=str))
                raise FlywheelStopped(summary["stopped"])
            first_seed = SHIFT_SEED + cycle * 10000
            summaries = stage("shift", fleet.work, first_seed, cfg.orders, ui, f"shift: {cfg.robots} robots x {cfg.orders} orders")
            row["shift"] = {k: sum(s[k] for s in summaries) for k in ("episodes", "successes", "safety_stops",
                                                                      "deadline_misses", "control_steps")}
            with ui.bar("ingest the fleet's telemetry", None):
                row["ingest"] = stage("ingest", TelemetryStore(home.home).ingest)
            row["fleet"] = shift_results(str(fleet_data), first_seed, cfg.robots * cfg.orders)
            with ui.bar("corrections: failures redone on the same robot and scene", None) as (advance, _):
                row["corrections"] = stage("corrections", corrections, fleet_data, fixes, cfg.workers, DEMO_NOISE,
                                           lambda ok: advance())
            if summary["cycles"]:
                row["rise"] = rise(summary["cycles"][-1]["fleet"]["all"], row["fleet"]["all"])
            row["seconds"] = round(time.time() - c0, 1)
            summary["cycles"].append(row)
            summary["plot"] = str(plot(summary["cycles"], run_dir / "flywheel.png"))
            summary["seconds"] = round(time.time() - t0, 1)
            (run_dir / "flywheel.json").write_text(json.dumps(summary, indent=1, default=str))
            w, n = row["fleet"]["all"]
            ui.log(f"cycle {cycle}: fleet success {w}/{n} ({100 * w / max(1, n):.0f}%) in {row['seconds']:.0f} s")
    return summary
