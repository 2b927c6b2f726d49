"""The ``academy`` command line: one command per flywheel stage as the stages land."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STAGES = """
\b
Flywheel stages (see docs/architecture.md for what is built):

\b
  ground    built    MuJoCo workcell, tasks, experts, reality robots (academy tasks, expert)
  watch     partial  robot demonstrations from human video (academy record-human, watch)
  data      built    episode store in LeRobot's v3.0 layout (academy collect, data)
  learn     built    one policy for every skill (academy learn, eval)
  practice  built    residual RL in simulation, randomization, curriculum (academy practice)
  dream     partial  world model, variations (academy dream), what-ifs, practice in imagination (practice --dream)
  exam      built    regression suite, safety and latency, release gate (academy exam)
  release   built    registry, signed bundles, deltas (academy release, releases)
  deploy    built    update server and dashboard, robot update agent, staged rollouts (academy serve, agent, rollout)
  fleet     built    robots at work, shadow mode, telemetry, corrections (academy fleet shift, ingest, ...)
  flywheel  built    the closed loop on embedded defaults, report.html (academy run [--cycles N] [--budget X], report)
  command   built    plain-language instructions to checked skill plans, carried out (academy command, planner)
"""

app = typer.Typer(
    help="Academy: an open robot-learning flywheel.\n" + STAGES,
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )


def _parse_difficulty(items: list[str]) -> dict:
    from academy.sim.tasks import TaskError, parse_knobs

    try:
        return parse_knobs(items)
    except TaskError as e:
        raise typer.BadParameter(str(e)) from None


@app.command()
def tasks() -> None:
    """List the tasks, their descriptions and difficulty knobs."""
    from academy.sim.tasks import REGISTRY

    table = Table("task", "description", "difficulty knobs (default, range)")
    for name, cls in REGISTRY.items():
        knobs = "\n".join(f"{k.name}={k.default} [{k.low}, {k.high}]: {k.doc}" for k in cls.knobs)
        table.add_row(name, cls.description, knobs)
    console.print(table)


@app.command()
def expert(
    task: str = typer.Option("sort_cells", help="task name (see `academy tasks`)"),
    episodes: int = typer.Option(10, min=1, help="number of seeded episodes"),
    seed: int = typer.Option(0, help="first seed"),
    reality: Optional[str] = typer.Option(None, help="run on RealityRobot(SERIAL) instead of the simulation"),
    difficulty: list[str] = typer.Option([], "--difficulty", "-d", help="knob=value, repeatable"),
    video: Optional[Path] = typer.Option(None, help="write the first episode to this mp4"),
) -> None:
    """Run a task's scripted expert and print its success rate."""
    from academy.sim.rollout_expert import run_expert
    from academy.sim.tasks import TaskError
    from academy.video import write_mp4

    try:
        with _progress() as progress:
            bar = progress.add_task(f"{task} expert", total=episodes)
            results = run_expert(
                task, list(range(seed, seed + episodes)), _parse_difficulty(difficulty), reality,
                video_seeds=(seed,) if video else (), on_episode=lambda r: progress.advance(bar),
            )
    except TaskError as e:
        raise typer.BadParameter(str(e)) from None
    wins = sum(r.success for r in results)
    console.print(f"{task}: {wins}/{episodes} successes ({100 * wins / episodes:.0f}%)"
                  + (f" on reality robot {reality}" if reality else " in nominal simulation"))
    if video:
        console.print(f"video: {write_mp4(video, results[0].frames)}")


def _parse_ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    """["friction=0.5:1.5", ...] -> {"friction": (0.5, 1.5), ...}."""
    spec = {}
    for item in items:
        name, sep, rng = item.partition("=")
        low, sep2, high = rng.partition(":")
        try:
            spec[name.strip()] = (float(low), float(high))
        except ValueError:
            raise typer.BadParameter(f"expected TERM=LOW:HIGH, got {item!r}") from None
        if not sep or not sep2:
            raise typer.BadParameter(f"expected TERM=LOW:HIGH, got {item!r}")
    return spec


def _parse_randomization(items: list[str]):
    """["encoder_offset=0:0.01", ...] -> a RandomizationConfig with only those terms on (None if empty)."""
    if not items:
        return None
    from academy.sim.randomize import RandomizationConfig

    spec = _parse_ranges(items)
    try:
        return RandomizationConfig.from_dict({k: list(v) for k, v in spec.items()}).only(*spec)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _parse_context(items: list[str]) -> dict[str, tuple[float, float]] | None:
    """["friction=0.5:1.5", ...] -> context ranges (None if empty), checked."""
    if not items:
        return None
    from academy.sim.randomize import draw_context
    import numpy as np

    spec = _parse_ranges(items)
    try:
        draw_context(spec, np.random.default_rng(0))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return spec


def _task_knobs(task: str, difficulty: list[str]) -> dict:
    """The difficulty knobs given as knob=value, checked against the task (bad ones: a usage error)."""
    from academy.sim.tasks import TaskError, make_task

    knobs = _parse_difficulty(difficulty)
    try:
        make_task(task, **knobs)
    except (TaskError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    return knobs


@app.command()
def collect(
    task: str = typer.Option(..., help="task name (see `academy tasks`)"),
    episodes: int = typer.Option(100, min=1, help="number of seeded expert episodes"),
    out: Path = typer.Option(Path("academy-data/datasets/expert"), help="dataset folder (appended to if it exists)"),
    seed: int = typer.Option(0, help="first seed"),
    reality: Optional[str] = typer.Option(None, help="record on RealityRobot(SERIAL)"),
    difficulty: list[str] = typer.Option([], "--difficulty", "-d", help="knob=value, repeatable"),
    workers: int = typer.Option(2, min=1, help="simulation processes"),
    noise: float = typer.Option(0.0, min=0.0, help="std of noise on executed actions (labels stay the expert's)"),
    randomize: list[str] = typer.Option([], "--randomize", "-r",
                                        help="TERM=LOW:HIGH, repeatable: randomize these terms only (academy.sim.randomize.TERMS)"),
    context: list[str] = typer.Option([], "--context", "-c",
                                      help="TERM=LOW:HIGH, repeatable: draw each episode's physical context "
                                           "(friction, object_mass, object_size) and record it"),
    policy: Optional[Path] = typer.Option(None, help="record this policy's episodes (source practice) instead of the expert's"),
) -> None:
    """Record expert (or a policy's) episodes into a LeRobot v3.0 dataset."""
    from academy.data.collect import collect as record

    knobs = _task_knobs(task, difficulty)
    randomization = _parse_randomization(randomize)
    context_ranges = _parse_context(context)
    wins = 0
    with _progress() as progress:
        bar = progress.add_task(f"collect {task}", total=episodes)

        def done(_seed: int, success: bool) -> None:
            nonlocal wins
            wins += success
            progress.advance(bar)

        try:
            ds = record(task, episodes, out, seed, knobs, reality, workers, done, noise, randomization, context_ranges,
                        policy)
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    console.print(f"{ds}: {wins}/{episodes} new episodes succeeded")


@app.command("record-human")
def record_human(
    task: str = typer.Option(..., help="task name (see `academy tasks`)"),
    episodes: int = typer.Option(10, min=1, help="episodes to perform"),
    out: Path = typer.Option(Path("academy-data/human"), help="folder for the recordings"),
    seed: int = typer.Option(0, help="scene seed of the first episode"),
    per_recording: int = typer.Option(5, min=1, help="episodes per continuous recording (one person each)"),
    person: int = typer.Option(0, help="seed of the first recording's person (body size, habits)"),
    difficulty: list[str] = typer.Option([], "--difficulty", "-d", help="knob=value, repeatable"),
    workers: int = typer.Option(2, min=1, help="rendering processes"),
) -> None:
    """Render a person doing a task, filmed by the five-camera helmet rig (mp4 + calibration + head poses)."""
    from academy.human.record import record_many

    knobs = _task_knobs(task, difficulty)
    n_rec = -(-episodes // per_recording)
    with _progress() as progress:
        bar = progress.add_task(f"record-human {task}", total=n_rec)
        paths = record_many(out, task, episodes, seed, per_recording, person, knobs or None, workers,
                            lambda _p: progress.advance(bar))
    for p in paths:
        console.print(f"recording: {p}")


@app.command()
def watch(
    videos: Path = typer.Argument(..., help="a recording folder, or a folder of recordings"),
    out: Path = typer.Option(Path("academy-data/datasets/watched"), help="dataset folder (appended to if it exists)"),
    report: Optional[Path] = typer.Option(None, help="write the per-episode report as JSON here"),
) -> None:
    """Turn recordings of people into robot demonstrations (keypoints, retargeting, replay)."""
    from academy.watch.pipeline import find_recordings, watch as run_watch
    from academy.watch.rig import RecordingError

    try:
        n = len(find_recordings(videos))
    except RecordingError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    with _progress() as progress:
        bar = progress.add_task("watch", total=n)
        result = run_watch(videos, out, on_recording=lambda _p: progress.advance(bar))
    table = Table("recording", "episode", "scene seed", "outcome", "idle steps dropped", "reason")
    for e in result.episodes:
        table.add_row(Path(e.recording).name, str(e.index), str(e.seed), e.outcome,
                      str(e.idle_dropped) if e.outcome == "success" else "", e.reason)
    console.print(table)
    for rec, why in result.recordings_skipped.items():
        console.print(f"[yellow]skipped {rec}: {why}[/yellow]")
    ok = sum(e.outcome == "success" for e in result.episodes)
    console.print(f"{ok} of {len(result.episodes)} episodes became demos in {out}; "
                  f"{result.video_seconds:.0f} s of video in {result.wall_seconds:.0f} s "
                  f"({result.video_seconds / max(result.wall_seconds, 1e-9):.2f}x real time)")
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_dict(), indent=2))


data_app = typer.Typer(help="Inspect, check and combine datasets.", no_args_is_help=True, add_completion=False)
app.add_typer(data_app, name="data")


def _open(path: Path):
    from academy.data import Dataset, DatasetError

    try:
        return Dataset(path)
    except DatasetError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None


@data_app.command("info")
def data_info(path: Path = typer.Argument(..., help="dataset folder")) -> None:
    """Episodes, frames and tasks of a dataset, by task, source and outcome."""
    ds = _open(path)
    console.print(f"{ds.root}: {ds.num_episodes} episodes, {ds.num_frames} frames at {ds.fps} fps, "
                  f"codebase {ds.info['codebase_version']}")
    console.print("features: " + ", ".join(f"{k} {ft['dtype']}{list(ft['shape'])}" for k, ft in ds.features.items()))
    if ds.num_episodes and "academy/task" in ds.episodes.columns:
        table = Table("task", "source", "outcome", "episodes", "frames")
        groups = ds.episodes.groupby(["academy/task", "academy/source", "academy/outcome"])
        for (task, source, outcome), g in groups:
            table.add_row(task, source, outcome, str(len(g)), str(int(g["length"].sum())))
        console.print(table)


@data_app.command("validate")
def data_validate(
    path: Path = typer.Argument(..., help="dataset folder"),
    videos: bool = typer.Option(True, help="decode every episode's video frames"),
    repair: bool = typer.Option(False, help="first remove what a crashed writer left behind"),
) -> None:
    """Check every file and field against the LeRobot v3.0 layout."""
    from academy.data import DatasetError

    ds = _open(path)
    if repair:
        for removed in ds.recover():
            console.print(f"removed {removed}")
    try:
        summary = ds.validate(videos=videos)
    except DatasetError as e:
        console.print(f"[red]invalid: {e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"valid: {summary}")


@data_app.command("merge")
def data_merge(
    paths: list[Path] = typer.Argument(..., help="datasets to merge, in order"),
    out: Path = typer.Option(..., help="new dataset folder"),
) -> None:
    """Merge datasets with the same features into a new one."""
    from academy.data import DatasetError, merge

    try:
        console.print(f"merged: {merge(paths, out)}")
    except (DatasetError, FileExistsError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None


@data_app.command("filter")
def data_filter(
    path: Path = typer.Argument(..., help="source dataset"),
    out: Path = typer.Option(..., help="new dataset folder"),
    task: Optional[str] = typer.Option(None),
    source: Optional[str] = typer.Option(None),
    outcome: Optional[str] = typer.Option(None),
) -> None:
    """Copy the episodes matching task, source and outcome into a new dataset."""
    from academy.data import DatasetError, filter_dataset

    try:
        console.print(f"filtered: {filter_dataset(path, out, task=task, source=source, outcome=outcome)}")
    except (DatasetError, FileExistsError, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None


@app.command()
def learn(
    dataset: Path = typer.Option(Path("academy-data/datasets/expert"), help="dataset folder"),
    out: Path = typer.Option(Path("academy-data/policies/bc"), help="checkpoint folder"),
    arch: str = typer.Option("mlp", help="mlp or transformer"),
    minutes: float = typer.Option(10.0, min=0.05, help="training time budget"),
    steps: int = typer.Option(30000, min=1, help="training step budget"),
    chunk: int = typer.Option(10, min=1, help="actions predicted per step"),
    hidden: int = typer.Option(512, min=8, help="network width"),
    outcome: str = typer.Option("success", help="learn from episodes with this outcome ('any' for all)"),
    noise: float = typer.Option(0.05, min=0.0, help="input noise while training, in units of each feature's std"),
    noise_scale: str = typer.Option("task", help="that std: within each frame's own task (task), or over all "
                                                 "frames (pooled, as before 2026-11-23)"),
    prev_noise: Optional[float] = typer.Option(None, min=0.0, help="the same for the previous-action input (default: --noise)"),
    actions: str = typer.Option("joints", help="the network's action space: joints, or hands (grasp-site poses solved by IK)"),
    seed: int = typer.Option(0),
    weight: list[str] = typer.Option([], help="SOURCE=W: draw that source's frames W times as often, e.g. "
                                             "correction=3 (fleet failures redone); repeat"),
    instructions: Optional[Path] = typer.Option(None, help="a planner folder: condition the policy on each skill's "
                                                           "instruction embedding (academy command)"),
    balance_tasks: bool = typer.Option(False, "--balance-tasks", help="draw every task's frames equally often "
                                                                      "(default: every frame equally often)"),
    input_norm: str = typer.Option("task", help="the network's input scales: each task's own (task), or over "
                                                "all frames (pooled, as before 2026-11-23)"),
) -> None:
    """Train one policy for every task of a dataset (behaviour cloning of action chunks)."""
    from academy.data import DatasetError
    from academy.data.layout import SOURCES
    from academy.learn.train import TrainConfig, train

    weights = {}
    for item in weight:
        src, _, w = item.partition("=")
        if src not in SOURCES:
            raise typer.BadParameter(f"--weight {item!r}: source {src!r} is not one of {SOURCES}")
        try:
            weights[src] = float(w)
        except ValueError:
            raise typer.BadParameter(f"--weight {item!r}: the weight must be a number") from None
        if weights[src] <= 0:
            raise typer.BadParameter(f"--weight {item!r}: the weight must be above 0")
    cfg = TrainConfig(arch=arch, chunk=chunk, hidden=hidden, max_minutes=minutes, max_steps=steps, seed=seed,
                      obs_noise=noise, prev_noise=prev_noise, actions=actions, source_weights=weights or None,
                      instructions=str(instructions) if instructions else None, balance_tasks=balance_tasks,
                      noise_scale=noise_scale, input_norm=input_norm)
    try:
        with _progress() as progress:
            bar = progress.add_task("learn", total=100)
            info = train(dataset, out, cfg, None if outcome == "any" else outcome,
                         on_step=lambda s, loss, done: progress.update(
                             bar, completed=int(100 * done), description=f"learn: step {s}, loss {loss:.3f}"))
            progress.update(bar, completed=100)
    except (DatasetError, ValueError, RuntimeError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{info['steps']} steps in {info['seconds']} s on {info['frames']} frames "
                  f"({info['episodes']} episodes); loss {info['first_loss']:.3f} -> {info['final_loss']:.3f}, "
                  f"held-out episodes {info['val_loss']}")
    console.print(f"checkpoint: {out}")


dream_app = typer.Typer(help="The world model: fit it on stored episodes, dream variations of a demonstration.",
                        add_completion=False)
app.add_typer(dream_app, name="dream")


def _episode_ref(ref: str) -> tuple[Path, int]:
    """DATASET#EPISODE -> (dataset folder, episode index), or a usage error."""
    folder, sep, index = ref.rpartition("#")
    if not sep or not folder or not index.isdigit():
        raise typer.BadParameter(f"expected DATASET#EPISODE (e.g. academy-data/datasets/demos#3), got {ref!r}")
    return Path(folder), int(index)


@dream_app.callback(invoke_without_command=True)
def dream(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, "--from", help="the demonstration to vary: DATASET#EPISODE"),
    variations: int = typer.Option(10000, min=1, help="variations to dream"),
    model: Path = typer.Option(Path("academy-data/world-models/default"), help="world model (academy dream fit)"),
    policy: Optional[Path] = typer.Option(None, help="the policy that acts in the dreams (a checkpoint folder)"),
    out: Path = typer.Option(Path("academy-data/datasets/dreams"), help="dataset the kept dreams are appended to"),
    check: int = typer.Option(100, min=0, help="kept and rejected dreams replayed in the physics (0: none)"),
    position_jitter: float = typer.Option(0.02, min=0.0, help="m: each bench object's x and y, uniform +-"),
    yaw_jitter: float = typer.Option(0.2, min=0.0, help="rad: each bench object's turn, uniform +-"),
    context: list[str] = typer.Option([], "--context", "-c", help="TERM=LOW:HIGH, repeatable: the physics drawn "
                                      "per variation (default friction 0.6:1.4, object_mass 0.7:1.6, object_size 0.92:1.08)"),
    max_uncertainty: float = typer.Option(2.0, min=0.0, help="keep a dream whose mean spread is at most this "
                                          "times the model's spread on the source episode"),
    judge: str = typer.Option("task", help="what calls a dream a success: the task's own rule on the predicted "
                              "state (task), or the model's success head (head)"),
    settle: int = typer.Option(10, min=0, help="steps a dream goes on after it is called a success; the verdict "
                               "must still hold then"),
    report: Optional[Path] = typer.Option(None, help="write the summary (and the physics check) as JSON here"),
    seed: int = typer.Option(0),
) -> None:
    """Dream variations of one demonstration (academy dream --from DATASET#EPISODE --policy P), or a subcommand."""
    if ctx.invoked_subcommand is not None:
        return
    if source is None or policy is None:
        console.print(ctx.get_help())
        raise typer.Exit(0 if source is None and policy is None else 2)
    from academy.data import DatasetError
    from academy.dream.variations import VariationConfig, check_in_physics, dream as run_dream

    dataset, episode = _episode_ref(source)
    cfg = VariationConfig(variations=variations, position_jitter=position_jitter, yaw_jitter=yaw_jitter,
                          max_uncertainty=max_uncertainty, judge=judge, settle_steps=settle,
                          seed=seed)
    if context:
        cfg.context_ranges = _parse_context(context)
    try:
        with _progress() as progress:
            bar = progress.add_task("dream", total=variations)
            summary = run_dream(model, policy, dataset, episode, out, cfg, on_batch=lambda done, kept: progress.update(
                bar, completed=done, description=f"dream: {kept} kept"))
            physics = None
            if check:
                bar2 = progress.add_task("replay in physics", total=None)
                physics = check_in_physics(summary, check)
                progress.update(bar2, total=1, completed=1)
    except (DatasetError, ValueError, FileNotFoundError, KeyError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    n = summary["variations"]
    console.print(f"{n} variations of {summary['source']} ({summary['task']}) in {summary['seconds']} s: "
                  f"the model called {summary['model_success']} successes, {summary['kept']} kept "
                  f"(spread limit {summary['uncertainty_limit']:.3g}); {summary['written']} written to {out}")
    if physics:
        for label, row in physics.items():
            if row["replayed"]:
                console.print(f"physics replay of {label} dreams: {row['succeeded']}/{row['replayed']} succeed")
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({**{k: v for k, v in summary.items() if k != "rollouts"}, "physics": physics},
                                     indent=2))
        console.print(f"report: {report}")


@dream_app.command("whatif")
def dream_whatif(
    policy: Path = typer.Option(..., help="the policy to rehearse (a checkpoint folder)"),
    model: Path = typer.Option(Path("academy-data/world-models/default"), help="world model (academy dream fit)"),
    data: list[Path] = typer.Option(..., help="datasets whose episodes' first frames are the scenes, repeatable"),
    what_if: list[str] = typer.Option([], "--what-if", help="NAME:TERM=LOW:HIGH[,TERM=LOW:HIGH], repeatable "
                                      "(default: slippery, heavy, both; outside the recorded ranges)"),
    task: list[str] = typer.Option([], help="tasks (default: those the policy knows that the data holds), repeatable"),
    episodes: int = typer.Option(200, min=1, help="scenes per task and condition"),
    judge: str = typer.Option("task", help="what calls a rehearsal a success: the task's own rule on the "
                              "predicted state (task), or the model's success head (head)"),
    report: Optional[Path] = typer.Option(None, help="write the rehearsal as JSON here"),
    seed: int = typer.Option(0),
) -> None:
    """Rehearse the policy in the world model under physics the store never recorded; name the
    skills it predicts will fail."""
    from academy.data import DatasetError
    from academy.dream.whatif import rehearse

    what_ifs = None
    if what_if:
        what_ifs = {}
        for item in what_if:
            name, sep, spec = item.partition(":")
            if not sep or not name or "=" in name:
                raise typer.BadParameter(f"a what-if looks like NAME:TERM=LOW:HIGH[,TERM=LOW:HIGH], got '{item}'")
            what_ifs[name] = _parse_context(spec.split(","))
    try:
        with _progress() as progress:
            progress.add_task("rehearse in the world model", total=None)
            out = rehearse(str(model), str(policy), [str(d) for d in data], what_ifs, task or None, episodes, seed,
                          judge=judge)
    except (DatasetError, ValueError, FileNotFoundError, KeyError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    conditions = list(next(iter(out["tasks"].values())))
    table = Table("task", *conditions)
    for t, rows in out["tasks"].items():
        table.add_row(t, *(f"{rows[c]['predicted_success']:.0%} (spread x{rows[c]['uncertainty_vs_recorded']})"
                           for c in conditions))
    console.print(table)
    console.print(f"predicted success over {episodes} scenes per task (no exploration noise); spread: the model's "
                  "uncertainty against its uncertainty under the recorded physics")
    for f in out["flagged"]:
        console.print(f"[yellow]predicted to fail: {f['task']} when {f['what_if']} "
                      f"({f['drop']:.0%} points below the recorded physics)[/yellow]")
    if not out["flagged"]:
        console.print("no skill is predicted to lose 10 points or more")
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(out, indent=2))
        console.print(f"report: {report}")


@dream_app.command("fit")
def dream_fit(
    dataset: list[Path] = typer.Option(..., help="dataset folder (repeat for several: every episode is used)"),
    out: Path = typer.Option(Path("academy-data/world-models/default"), help="world-model folder"),
    minutes: float = typer.Option(5.0, min=0.05, help="training time budget"),
    steps: int = typer.Option(20000, min=1, help="training step budget"),
    members: int = typer.Option(5, min=1, help="ensemble members"),
    hidden: int = typer.Option(384, min=8, help="network width"),
    horizon: int = typer.Option(4, min=1, help="steps of each training rollout (1: a one-step loss)"),
    seed: int = typer.Option(0),
) -> None:
    """Fit the world model (an ensemble) and report its k-step open-loop error on held-out episodes."""
    from academy.data import DatasetError
    from academy.dream.fit import FitConfig, fit, plot_kstep
    from academy.dream.model import WorldModelConfig

    try:
        with _progress() as progress:
            bar = progress.add_task("dream fit", total=100)
            info = fit(dataset, out, FitConfig(max_minutes=minutes, max_steps=steps, horizon=horizon, seed=seed),
                       WorldModelConfig(members=members, hidden=hidden),
                       on_step=lambda s, loss, done: progress.update(
                           bar, completed=int(100 * done), description=f"dream fit: step {s}, loss {loss:.3f}"))
            progress.update(bar, completed=100)
    except (DatasetError, ValueError, FileNotFoundError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{info['steps']} steps in {info['seconds']} s on {info['transitions']} transitions "
                  f"({info['episodes']} episodes, {info['val_episodes']} held out)")
    if info["kstep"]:
        table = Table(title="open-loop error after k steps (median over held-out start points; no-change baseline)")
        names = [n for n in info["kstep"]["1"] if n != "no_change_baseline"]
        table.add_column("k")
        for n in names:
            table.add_column(n)
        for k, row in info["kstep"].items():
            table.add_row(k, *(f"{row[n]:.4g} ({row['no_change_baseline'][n]:.4g})" for n in names))
        console.print(table)
        console.print(f"plot: {plot_kstep(info['kstep'], out / 'kstep.png')}")
    console.print(f"world model: {out}")


def _practice_with_progress(cfg) -> dict:
    from academy.practice.run import practice as run_practice

    with _progress() as progress:
        bar = progress.add_task("practice", total=int(60 * cfg.minutes))

        def show(row: dict) -> None:
            wins = ", ".join(f"{t} {v:.0%}" for t, v in row.get("eval", {}).items())
            progress.update(bar, completed=min(int(row["seconds"]), int(60 * cfg.minutes)),
                            description=f"practice: update {row['update']}, {row['env_steps']} steps"
                            + (f", eval {wins}" if wins else ""))
            for change in row["changes"]:
                progress.console.print(f"curriculum: {change}")

        summary = run_practice(cfg, on_update=show)
        progress.update(bar, completed=int(60 * cfg.minutes))
    return summary


@app.command()
def practice(
    policy: Path = typer.Option(..., help="the learned policy to start from (a checkpoint folder)"),
    out: Path = typer.Option(Path("academy-data/practice/run"), help="run folder: policy/, log.jsonl, curve.png"),
    task: list[str] = typer.Option([], help="tasks to practise (default: all the policy knows), repeatable"),
    minutes: float = typer.Option(20.0, min=0.05, help="wall-clock budget"),
    updates: Optional[int] = typer.Option(None, min=1, help="stop after this many PPO updates"),
    scenes: int = typer.Option(12, min=1, help="scenes per task"),
    steps: int = typer.Option(64, min=1, help="control steps per scene per update"),
    workers: int = typer.Option(2, min=1, help="rollout workers"),
    backend: str = typer.Option("local", help="local, or ray (workers as Ray actors)"),
    curriculum: bool = typer.Option(True, help="start easy and promote by success (--no-curriculum: the target from the start)"),
    difficulty: list[str] = typer.Option([], "--difficulty", "-d", help="task.knob=value: the target difficulty, repeatable"),
    robot: Optional[str] = typer.Option(None, help="fine-tune on this reality robot instead of the simulation"),
    space: str = typer.Option("hands", help="the residual's actions: hands (grasp-site offsets) or joints"),
    eval_every: int = typer.Option(15, min=1, help="evaluate every this many updates"),
    eval_episodes: int = typer.Option(16, min=1, help="evaluation episodes per task (fixed seeds)"),
    seed: int = typer.Option(0),
    dream: Optional[Path] = typer.Option(None, help="practise in imagination: this world model steps the scenes"),
    dream_data: list[Path] = typer.Option([], help="datasets whose real states the dreamed branches start from, repeatable"),
    dream_horizon: int = typer.Option(40, min=1, help="control steps per dreamed branch"),
    dream_context: list[str] = typer.Option([], help="TERM=LOW:HIGH: draw each branch's physics (default: as recorded), repeatable"),
    dream_penalty: float = typer.Option(1.0, min=0.0, help="reward charged per unit of the model's uncertainty"),
    dream_judge: str = typer.Option("task", help="what ends a dreamed branch in success: the task's own rule on the "
                                    "predicted state (task), or the model's success head (head)"),
    eval_context: list[str] = typer.Option([], help="TERM=LOW:HIGH: the selection evaluations' physics, drawn per "
                                                    "scene (default: nominal), repeatable"),
    randomization: Optional[float] = typer.Option(None, min=0.0, help="the randomization to practise for, every task: "
                                                  "training ranges widened by this factor (default 1; 2 is about "
                                                  "the reality robots' spread)"),
    eval_randomization: Optional[float] = typer.Option(None, min=0.0, help="the selection evaluations' randomization "
                                                       "factor (default: what is practised for; 0: nominal robot)"),
) -> None:
    """Practise in simulation, or in a world model (--dream): residual PPO on a learned policy."""
    from academy.practice.run import PracticeConfig
    from academy.sim.reality import HELD_OUT_SERIALS

    from academy.sim.tasks import TaskError, parse_task_knobs

    try:
        target = parse_task_knobs(difficulty)
    except (TaskError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    if robot in HELD_OUT_SERIALS:
        raise typer.BadParameter(f"{robot} is a held-out reality robot, kept for evaluation only")
    if randomization is not None:
        from academy.sim.tasks import REGISTRY

        for name in task or list(REGISTRY):
            target.setdefault(name, {})["randomization"] = randomization
    cfg = PracticeConfig(policy=str(policy), out=str(out), tasks=task or None, minutes=minutes, iterations=updates,
                         scenes_per_task=scenes, steps=steps, workers=workers, backend=backend,
                         curriculum=curriculum, target=target, robot=robot, eval_every=eval_every,
                         eval_episodes=eval_episodes, seed=seed, space=space,
                         dream_model=str(dream) if dream else None, dream_data=[str(d) for d in dream_data],
                         dream_horizon=dream_horizon, dream_context=_parse_context(dream_context),
                         dream_penalty=dream_penalty, dream_judge=dream_judge, eval_context=_parse_context(eval_context),
                         eval_randomization=eval_randomization)
    try:
        summary = _practice_with_progress(cfg)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    table = Table("task", "before (base)", "best practiced", "at update")
    for t, v in summary["before"]["success"].items():
        table.add_row(t, f"{v:.0%}", f"{summary['best']['success'][t]:.0%}", str(summary["best"]["update"]))
    console.print(table)
    console.print(f"{summary['updates']} updates, {summary['env_steps']} env steps in {summary['wall_seconds']:.0f} s "
                  f"({summary['env_steps_per_second']:.0f} steps/s while collecting); "
                  f"evaluated on {cfg.eval_episodes} fixed seeds per task at the target difficulty")
    if not summary["updates"]:
        console.print(f"[yellow]no update fitted in {minutes:g} minutes after the first evaluation "
                      f"({summary['before']['seconds']:.0f} s): the learned policy is kept as it was. "
                      f"Give practice more --minutes, or fewer --eval-episodes.[/yellow]")
    console.print(f"practiced policy: {out / 'policy'}  (academy eval --policy {out / 'policy'}); curve: {out / 'curve.png'}")


@app.command("eval")
def eval_(
    policy: str = typer.Option(..., help="checkpoint folder, or 'expert'"),
    task: list[str] = typer.Option([], help="tasks (default: all), repeatable"),
    episodes: int = typer.Option(100, min=1, help="seeded episodes per task and condition"),
    reality: bool = typer.Option(True, help="also on the held-out reality robots"),
    workers: int = typer.Option(2, min=1),
    out: Optional[Path] = typer.Option(None, help="write the results as JSON here"),
    variations: bool = typer.Option(False, help="the held-out variation set instead: lower friction, heavier "
                                                "parts, unseen layouts (simulation only)"),
) -> None:
    """Success per task over held-out seeds, nominal and on the held-out reality robots."""
    from academy.evaluate import HELD_OUT_SEED, HELD_OUT_VARIATIONS, VARIATION_SEED, evaluate
    from academy.sim.tasks import REGISTRY

    if variations:
        reality = False
    tasks = task or list(REGISTRY)
    unknown = [t for t in tasks if t not in REGISTRY]
    if unknown:
        raise typer.BadParameter(f"unknown tasks {unknown}; known: {list(REGISTRY)}")
    if policy != "expert" and not (Path(policy) / "config.json").exists():
        raise typer.BadParameter(f"{policy} is not a policy checkpoint (no config.json)")
    total = len(tasks) * (episodes + (episodes if reality else 0))
    with _progress() as progress:
        bar = progress.add_task("eval", total=total)
        results = evaluate(policy, tasks, episodes, reality, workers=workers,
                           on_job=lambda t, s, wins: progress.advance(bar, len(wins)),
                           first_seed=VARIATION_SEED if variations else HELD_OUT_SEED,
                           context_ranges=HELD_OUT_VARIATIONS if variations else None)
    first = "held-out variations " + ", ".join(f"{k} {a}..{b}" for k, (a, b) in HELD_OUT_VARIATIONS.items()) \
        if variations else "nominal (held-out seeds)"
    table = Table("task", first, "held-out reality robots")
    for t, r in results.items():
        table.add_row(t, f"{r['nominal_success']:.0%} of {r['nominal_episodes']}",
                      f"{r['reality_success']:.0%} of {r['reality_episodes']}" if reality else "-")
    console.print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))


# embedded defaults of `academy run` at --budget 1 (one cycle in about a quarter of an hour on 2 cores)
RUN_DEFAULTS = {"demos": 60, "human_episodes": 1, "learn_minutes": 3.5, "practice_minutes": 1.5, "dream_variations": 50,
                "dream_fit_minutes": 1.0, "exam_episodes": 8, "robots": 4, "orders": 12}


@app.command()
def run(
    cycles: int = typer.Option(1, min=1, help="flywheel cycles: learn, practice, dream, exam, release, deploy to the "
                               "fleet, a shift, ingest, corrections, the next cycle"),
    budget: float = typer.Option(1.0, min=0.05, help="scales every stage's budget (demos, training and practice time, "
                                 "dreams, exam scenes, orders); 1: about 15 minutes a cycle on 2 cores"),
    demos: Optional[int] = typer.Option(None, min=1, help="expert demonstrations per task [60 x budget]"),
    learn_minutes: Optional[float] = typer.Option(None, min=0.05, help="training time per cycle [3.5 x budget]"),
    learn_steps: Optional[int] = typer.Option(None, min=1, help="a training step budget per cycle instead of "
                                              "--learn-minutes (the same training on a busy machine)"),
    practice_minutes: Optional[float] = typer.Option(None, min=0.0, help="practice per cycle, 0: none [1.5 x budget]"),
    human_episodes: Optional[int] = typer.Option(None, min=0, help="people filmed and watched per task, 0: none [1]"),
    dream_variations: Optional[int] = typer.Option(None, min=0, help="dreamed variations per task, 0: no dream "
                                                   "[50 x budget]"),
    exam_episodes: Optional[int] = typer.Option(None, min=1, help="exam scenes per skill, nominal and reality each "
                                                "[8 x budget]"),
    robots: Optional[int] = typer.Option(None, min=1, help="physics robots in the fleet [4]"),
    orders: Optional[int] = typer.Option(None, min=1, help="orders per robot per shift [12 x budget]"),
    task: list[str] = typer.Option(["handover", "place_part"], "--task", help="the fleet's tasks, repeatable"),
    correction_weight: float = typer.Option(3.0, min=0.0, help="how much more often corrections are drawn"),
    warm_start: bool = typer.Option(False, help="each cycle goes on training the last cycle's policy instead of "
                                    "training afresh"),
    backend: str = typer.Option("local", help="the fleet's robots as local processes, or ray"),
    limits: Optional[Path] = typer.Option(None, help="the exam's safety limits (JSON; default: the flywheel's, "
                                          "docs/fleet.md)"),
    videos: bool = typer.Option(True, help="render one sample episode per task of the last release for the report"),
    workspace: Path = typer.Option(Path("academy-data"), help="workspace directory"),
) -> None:
    """The flywheel on embedded defaults: watch, learn, practice, dream, exam, release, deploy, the fleet's shift;
    a summary table, flywheel.json and an HTML report (report.html) in the run folder."""
    def scaled(given, key, integer=True):
        if given is not None:
            return given
        value = RUN_DEFAULTS[key] * (budget if key not in ("human_episodes", "robots") else 1)
        return max(1, round(value)) if integer else value

    _flywheel(cycles, scaled(demos, "demos"), scaled(learn_minutes, "learn_minutes", False),
              scaled(practice_minutes, "practice_minutes", False), workspace, task, scaled(robots, "robots"),
              scaled(orders, "orders"), scaled(human_episodes, "human_episodes"),
              scaled(dream_variations, "dream_variations"), scaled(exam_episodes, "exam_episodes"), correction_weight,
              warm_start, backend, limits, learn_steps, scaled(None, "dream_fit_minutes", False), videos)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder of academy run (academy-data/runs/...)"),
    out: Optional[Path] = typer.Option(None, help="where to write it [RUN/report.html]"),
) -> None:
    """Write the run's self-contained HTML report again (plots and videos inside the one file)."""
    from academy.report import write_report

    try:
        path = write_report(run_dir, out)
    except FileNotFoundError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _flywheel(cycles: int, demos: int, learn_minutes: float, practice_minutes: float, workspace: Path,
              tasks: list[str], robots: int, orders: int, human_episodes: int, dream_variations: int,
              exam_episodes: int, correction_weight: float, warm_start: bool, backend: str,
              limits: Optional[Path], learn_steps: Optional[int], dream_fit_minutes: float = 1.0,
              videos: bool = False) -> None:
    from academy.exam.safety import SafetyLimits
    from academy.flywheel.cycle import FlywheelConfig, FlywheelStopped, Stages, run_flywheel

    cfg = FlywheelConfig(workspace=str(workspace), cycles=cycles, tasks=tuple(tasks), demos=demos,
                         human_episodes=human_episodes, learn_minutes=learn_minutes, practice_minutes=practice_minutes,
                         dream_variations=dream_variations, exam_episodes=exam_episodes,
                         exam_reality_episodes=exam_episodes, robots=robots, orders=orders,
                         correction_weight=correction_weight, warm_start=warm_start, backend=backend,
                         learn_steps=learn_steps, dream_fit_minutes=dream_fit_minutes)
    if limits:
        cfg.limits = SafetyLimits.load(limits)
    try:
        cfg.check()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    run_dir = workspace / "runs" / (time.strftime("%Y%m%d-%H%M%S") + "-flywheel")
    try:
        with _progress() as progress:
            summary = run_flywheel(cfg, run_dir, Stages(progress, progress.console.print))
    except FlywheelStopped as e:
        console.print(f"[red]flywheel stopped: {e}[/red]\n(a policy this poor may need more demonstrations or "
                      f"training: --demos, --learn-minutes; or other limits: --limits)\nsummary: {run_dir / 'flywheel.json'}")
        raise typer.Exit(1) from None
    table = Table("cycle", "training episodes (successes by source)", "release", "rollout", "fleet success",
                  "rise (one-sided p)", *(f"{t}" for t in tasks), "failures corrected", "minutes")
    for c in summary["cycles"]:
        rel = c["release"]
        w, n = c["fleet"]["all"]
        table.add_row(str(c["cycle"]),
                      f"{c['data']['episodes']} ({', '.join(f'{k} {v}' for k, v in c['data']['successes_by_source'].items())})",
                      str(rel["released"]) if rel["released"] else "refused: " + "; ".join(rel["reasons"])[:80],
                      c["deploy"]["state"] if "deploy" in c else "-", f"{w}/{n} ({100 * w / max(1, n):.0f}%)",
                      f"{c['rise']['points']:+.1f} points (p {c['rise']['p']})" if c.get("rise") else "-",
                      *(f"{a}/{b}" for a, b in (c["fleet"]["tasks"].get(t, [0, 0]) for t in tasks)),
                      str(c["corrections"]["redone"]), f"{c['seconds'] / 60:.1f}")
    console.print(table)
    from academy.report import sample_videos, write_report

    if videos:
        with _progress() as progress:
            bar = progress.add_task("report: sample videos of the last release", total=len(tasks))
            sample_videos(run_dir, tasks, on_video=lambda _p: progress.advance(bar))
    page = write_report(run_dir)
    console.print(f"plot: {summary['plot']}\nsummary: {run_dir / 'flywheel.json'}\nreport: {page}")


# ---------------------------------------------------------------------- exam and release
def _exam_table(report: dict, decision=None) -> Table:
    table = Table("skill", "nominal", "reality robots", "episode time", "safety (steps over a limit)", "gate")
    for skill, r in report["skills"].items():
        n, re_ = r["nominal"], r["reality"]
        safety = ", ".join(f"{k} {v}" for k, v in r["safety"].items() if k not in ("worst", "steps") and v) or "none"
        row = (decision.skills.get(skill, {}) if decision else {})
        parts = [f"{part} p={row[part]['p']}" for part in ("nominal", "reality") if part in row]
        table.add_row(skill + (" (not in policy)" if r.get("missing") else ""),
                      f"{n['successes']}/{n['episodes']}", f"{re_['successes']}/{re_['episodes']}",
                      f"{r['episode_seconds']} s" if r["episode_seconds"] else "-", safety, ", ".join(parts) or "-")
    return table


def _exam_config(episodes: int, reality_episodes: int):
    from academy.exam.exam import ExamConfig

    return ExamConfig(episodes=episodes, reality_episodes=reality_episodes)


def _print_decision(decision, against) -> None:
    if decision.passed:
        console.print(f"gate: PASSED (against {'release ' + str(against) if against else 'no release: first release'})")
    else:
        console.print(f"gate: REFUSED (against {'release ' + str(against) if against else 'no release'})")
        for reason in decision.reasons:
            console.print(f"  - {reason}")


_HOME = typer.Option(Path("academy-data/releases"), help="release home: keys, signed repository, registry")
_DB = typer.Option(None, help="registry database URL (default: the home's SQLite file; or ACADEMY_DB_URL), "
                               "e.g. postgresql+psycopg://user@host/db")


@app.command()
def exam(
    policy: str = typer.Option(..., help="policy checkpoint folder (or 'expert')"),
    skills: Optional[list[str]] = typer.Option(None, "--skill", help="skills to examine (default: the policy's and every mastered one)"),
    episodes: int = typer.Option(24, min=1, help="nominal scenes per skill"),
    reality_episodes: int = typer.Option(16, min=0, help="scenes per skill on the held-out reality robots"),
    home: Path = _HOME,
    db: Optional[str] = _DB,
    out: Optional[Path] = typer.Option(None, help="write the exam report (JSON) here"),
) -> None:
    """Examine a policy on every skill (nominal and reality robots, safety, latency) and gate it against the current release."""
    from academy.exam.exam import run_exam, save_report
    from academy.release.publish import ReleaseHome

    rh = ReleaseHome(home, db)
    cfg = _exam_config(episodes, reality_episodes)
    mastered = rh.registry.mastered()
    if not skills and policy != "expert":
        from academy.learn.checkpoint import trained_tasks

        skills = list(dict.fromkeys(trained_tasks(policy) + mastered))
    with _progress() as progress:
        bar = progress.add_task("exam", total=None)
        report = run_exam(policy, skills, cfg, on_episodes=lambda done, total: progress.update(bar, completed=done, total=total))
    decision, against = rh.judge(report)
    console.print(_exam_table(report, decision))
    inf = report.get("inference")
    if inf:
        console.print(f"inference (batch 1, 1 thread): p50 {inf['p50_ms']} ms, p99 {inf['p99_ms']} ms, "
                      f"peak memory {inf['peak_rss_mb']:.0f} MB; fits: {', '.join(inf['fits']) or 'no profile'}")
    console.print(f"exam: {report['exam_seconds']} s of episodes, {report['seconds']} s in all")
    _print_decision(decision, against)
    if out:
        save_report(report, out)
        console.print(f"report: {out}")


release_app = typer.Typer(help="Signed releases: keys, bundles, verification.", no_args_is_help=True, add_completion=False)
app.add_typer(release_app, name="release")


@release_app.command("init")
def release_init(home: Path = _HOME, db: Optional[str] = _DB) -> None:
    """Make a development key set (root, targets, snapshot, timestamp) and an empty signed repository."""
    from academy.release.publish import ReleaseHome

    rh = ReleaseHome(home, db)
    keyids = rh.init()
    for role, keyid in keyids.items():
        console.print(f"{role:9s} key {keyid[:16]}...  {home / 'keys' / (role + '.pem')}")
    console.print(f"repository: {home / 'repo'}; registry: {rh.db_url}")
    console.print("development keys: in production keep root and targets offline (docs/release.md)")


@release_app.command("publish")
def release_publish(
    policy: str = typer.Option(..., help="candidate policy checkpoint folder"),
    exam_report: Optional[Path] = typer.Option(None, "--exam", help="an exam report already made (academy exam --out)"),
    episodes: int = typer.Option(24, min=1, help="nominal scenes per skill, if the exam runs here"),
    reality_episodes: int = typer.Option(16, min=0, help="reality-robot scenes per skill, if the exam runs here"),
    note: str = typer.Option("", help="a note kept with the release"),
    planner: Optional[Path] = typer.Option(None, help="an examined planner folder to ship with it (default: the "
                                                      "current release's planner, if any)"),
    home: Path = _HOME,
    db: Optional[str] = _DB,
) -> None:
    """Exam, gate, bundle, sign and register a candidate as the next release."""
    from academy.exam.exam import load_report
    from academy.release.publish import GateRefused, ReleaseHome

    rh = ReleaseHome(home, db)
    rh.require_init()
    report = load_report(exam_report) if exam_report else None
    try:
        with _progress() as progress:
            bar = progress.add_task("exam", total=None)
            pub = rh.publish(policy, report, _exam_config(episodes, reality_episodes), note,
                             on_episodes=lambda done, total: progress.update(bar, completed=done, total=total),
                             planner=planner)
    except (GateRefused, ValueError) as e:
        console.print(str(e))
        raise typer.Exit(1)
    console.print(_exam_table(pub.exam, pub.decision))
    d = pub.delta
    console.print(f"release {pub.release} (parent {pub.manifest['parent']}): {len(pub.manifest['files'])} files, "
                  f"{d['full_bytes'] / 1e6:.1f} MB; as a delta {d['delta_bytes'] / 1e6:.2f} MB ({d['ratio']:.1%}); "
                  f"fits {', '.join(pub.manifest['hardware_profiles']) or 'no profile'}")


@release_app.command("verify")
def release_verify(
    number: int = typer.Argument(..., help="release number"),
    root: Optional[Path] = typer.Option(None, help="trusted root metadata (default: the repository's 1.root.json)"),
    home: Path = _HOME,
    db: Optional[str] = _DB,
) -> None:
    """Fetch a release as a robot would (TUF from the trusted root, then every chunk) and check every file."""
    from academy.release.publish import ReleaseHome

    out = ReleaseHome(home, db).verify(number, root.read_bytes() if root else None)
    console.print(f"release {number}: verified: manifest {out['manifest_sha256'][:16]}..., {out['files']} files, "
                  f"{out['bytes'] / 1e6:.1f} MB, profiles {out['hardware_profiles']}; assembled in {out['bundle']}")


releases_app = typer.Typer(help="The release registry: list, lineage, compare.", invoke_without_command=True,
                           add_completion=False)
app.add_typer(releases_app, name="releases")


@releases_app.callback()
def releases_list(ctx: typer.Context, home: Path = _HOME, db: Optional[str] = _DB) -> None:
    """List releases (newest last) and the skills mastered."""
    if ctx.invoked_subcommand:
        ctx.obj = (home, db)
        return
    from academy.release.publish import ReleaseHome

    reg = ReleaseHome(home, db).registry
    table = Table("release", "parent", "created", "skills (nominal / reality)", "profiles", "delta")
    for r in reg.releases():
        skills = ", ".join(f"{k} {v['nominal']['successes']}/{v['nominal']['episodes']} / "
                           f"{v['reality']['successes']}/{v['reality']['episodes']}"
                           for k, v in r["exam"]["skills"].items())
        d = r["gate"].get("delta", {})
        table.add_row(str(r["number"]), str(r["parent"] or "-"), r["created"][:19], skills, ", ".join(r["profiles"]),
                      f"{d.get('ratio', 1):.1%}")
    console.print(table)
    console.print(f"mastered skills (always in the exam): {', '.join(reg.mastered()) or 'none yet'}")


@releases_app.command("lineage")
def releases_lineage(ctx: typer.Context, number: int = typer.Argument(..., help="release number")) -> None:
    """A release and its ancestors, newest first."""
    from academy.release.publish import ReleaseHome

    for r in ReleaseHome(*ctx.obj).registry.lineage(number):
        console.print(f"release {r['number']}  parent {r['parent'] or '-'}  {r['created'][:19]}  "
                      f"policy {r['policy_sha256'][:12]}  manifest {r['manifest_sha256'][:12]}  {r['note']}")


@releases_app.command("compare")
def releases_compare(ctx: typer.Context, a: int = typer.Argument(...), b: int = typer.Argument(...)) -> None:
    """The exam results of two releases side by side, with the gate's test of b against a."""
    from academy.exam.gate import gate
    from academy.release.publish import ReleaseHome

    reg = ReleaseHome(*ctx.obj).registry
    ra, rb = reg.get(a), reg.get(b)
    decision = gate(rb["exam"], ra["exam"], reg.mastered(), current_name=f"release {a}")
    table = Table("skill", f"release {a} nominal", f"release {b} nominal", f"release {a} reality", f"release {b} reality",
                  "one-sided p (nominal / reality)")
    for skill in dict.fromkeys(list(ra["exam"]["skills"]) + list(rb["exam"]["skills"])):
        cells = []
        for part in ("nominal", "reality"):
            for r in (ra, rb):
                s = r["exam"]["skills"].get(skill)
                cells.append(f"{s[part]['successes']}/{s[part]['episodes']}" if s else "-")
        row = decision.skills.get(skill, {})
        ps = " / ".join(str(row[p]["p"]) if p in row else "-" for p in ("nominal", "reality"))
        table.add_row(skill, cells[0], cells[1], cells[2], cells[3], ps)
    console.print(table)
    _print_decision(decision, a)


def _exam_and_release(policy: str, home: Path) -> dict:
    from academy.release.publish import GateRefused, ReleaseHome

    rh = ReleaseHome(home)
    if not rh.signing.initialized:
        rh.init()
        console.print(f"release: new release home {home} with development keys")
    try:
        with _progress() as progress:
            bar = progress.add_task("exam: every skill, nominal and reality robots", total=None)
            pub = rh.publish(policy, on_episodes=lambda done, total: progress.update(bar, completed=done, total=total))
    except GateRefused as e:
        console.print(_exam_table(e.report, e.decision))
        console.print(str(e))
        return {"policy": policy, "released": None, "reasons": e.decision.reasons}
    console.print(_exam_table(pub.exam, pub.decision))
    console.print(f"release {pub.release} published and signed ({home}); delta against its parent "
                  f"{pub.delta['ratio']:.1%} of {pub.delta['full_bytes'] / 1e6:.1f} MB")
    return {"policy": policy, "released": pub.release, "delta": pub.delta}


# ---------------------------------------------------------------------- deploy
@app.command()
def serve(
    home: Path = _HOME,
    db: Optional[str] = _DB,
    host: str = typer.Option("127.0.0.1", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8420, help="port"),
) -> None:
    """Run the update server: the signed repository, bundle chunks, robot check-ins and health reports, and the
    dashboard (releases and lineage, rollouts by cohort, the fleet's robots, live) at /dashboard."""
    import uvicorn

    from academy.deploy.server import KEEP_ALIVE_S, create_app

    from academy.release.publish import ReleaseHome

    ReleaseHome(home, db).require_init()
    console.print(f"update server for {home} on http://{host}:{port}  (dashboard: http://{host}:{port}/dashboard)")
    uvicorn.run(create_app(home, db), host=host, port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)


@app.command()
def agent(
    root: Path = typer.Option(..., help="the robot's folder (slots, state, trust root)"),
    serial: str = typer.Option(..., help="robot serial"),
    profile: str = typer.Option(..., help="the robot's hardware profile"),
    server: str = typer.Option("http://127.0.0.1:8420", help="update server URL"),
    trusted_root: Optional[Path] = typer.Option(None, help="root metadata to embed if the robot is not provisioned yet"),
    charging: bool = typer.Option(False, help="the robot is on its charger (installs happen only then)"),
    self_test_steps: Optional[int] = typer.Option(None, help="steps of the boot self-test episode (default: all)"),
) -> None:
    """Run a robot's update agent until it is idle again (or waits for its charger)."""
    from academy.deploy.agent import Agent, Transport, default_boot_check
    from academy.exam.profiles import profile as hardware

    hardware(profile)
    if not (root / "state.json").exists():
        if trusted_root is None:
            raise typer.BadParameter(f"{root} is not provisioned: give --trusted-root (the repository's 1.root.json)")
        Agent.provision(root, trusted_root.read_bytes())
    a = Agent(root, serial, profile, Transport(server),
              boot_check=lambda slot, prof: default_boot_check(slot, prof, self_test_steps))
    state = a.run_until_idle(charging=charging)
    release, slot = a.running()
    console.print(f"{serial}: {state}; running release {release} from {slot}" +
                  (f"; last error: {a.st.last_error}" if a.st.last_error else ""))


rollout_app = typer.Typer(help="Staged rollouts on the update server (academy serve).", no_args_is_help=True,
                          add_completion=False)
app.add_typer(rollout_app, name="rollout")
_SERVER = typer.Option("http://127.0.0.1:8420", help="update server URL")


def _server_call(method: str, url: str, **kw) -> dict | list:
    import httpx

    try:
        r = httpx.request(method, url, timeout=30, **kw)
    except httpx.HTTPError as e:
        raise typer.BadParameter(f"the update server at {url} did not answer ({e}); is `academy serve` running?") from None
    if r.status_code >= 400:
        console.print(f"refused: {r.json().get('detail', r.text)}")
        raise typer.Exit(1)
    return r.json()


def _print_rollout(st: dict) -> None:
    console.print(f"rollout {st['id']}: release {st['release']} (from {st['previous']}) to {st['profile']}: {st['state']}"
                  f"{' - ' + st['reason'] if st['reason'] else ''}")
    console.print(f"  cohort {st['cohort'] + 1} of {len(st['bounds'])} (robots let in: {len(st['let_in'])} of "
                  f"{st['bounds'][-1]}), installed {len(st['installed'])}, install failures {st['install_failures']}; "
                  f"success updated {st['updated_success'][0]}/{st['updated_success'][1]}, "
                  f"not yet updated {st['baseline_success'][0]}/{st['baseline_success'][1]}"
                  + (f"; rollback release {st['rollback_release']}" if st["rollback_release"] else ""))
    sh = st.get("shadow") or {}
    if sh.get("required_steps"):
        console.print(f"  shadow: {sh['required_steps']} steps per robot within {sh['bound']} rad; "
                      f"{'cleared' if sh['cleared'] else 'steps so far ' + str(sh['steps'])}; largest episode divergence "
                      f"{sh['max_divergence']:.4f} rad; would-be success {sh['would_be_success'][0]}/{sh['would_be_success'][1]}")


@rollout_app.command("create")
def rollout_create(
    release: int = typer.Option(..., help="release number"),
    profile: str = typer.Option(..., help="hardware profile to target"),
    canary_share: float = typer.Option(0.10, help="share of the robots in the first cohort"),
    growth: float = typer.Option(2.0, help="each cohort is this many times the last"),
    min_episodes: int = typer.Option(20, help="shift episodes of updated robots before a cohort grows"),
    success_margin: float = typer.Option(0.10, help="abort if updated robots succeed this much less (one-sided test)"),
    shadow_steps: int = typer.Option(0, min=0, help="control steps each robot of a cohort runs the release in shadow "
                                                    "before the cohort installs (0: no shadow period)"),
    shadow_divergence: float = typer.Option(0.05, help="abort if a shadowing robot's episode mean action divergence "
                                                       "is above this (rad)"),
    safety_stops: str = typer.Option("any", help="any: one safety stop on an updated robot aborts; rate: abort if "
                                                 "updated robots stop more often than the rest (one-sided test)"),
    server: str = _SERVER,
) -> None:
    """Start a rollout: a canary cohort first, then growing, with automatic abort and rollback."""
    _print_rollout(_server_call("POST", f"{server}/v1/rollouts", json={
        "release": release, "profile": profile, "canary_share": canary_share, "growth": growth,
        "min_episodes": min_episodes, "success_margin": success_margin, "shadow_steps": shadow_steps,
        "shadow_divergence": shadow_divergence, "safety_stops": safety_stops}))


@rollout_app.command("status")
def rollout_status(rollout_id: Optional[int] = typer.Argument(None), server: str = _SERVER) -> None:
    """One rollout's cohorts and evidence, or every rollout."""
    rows = [_server_call("GET", f"{server}/v1/rollouts/{rollout_id}")] if rollout_id else _server_call("GET", f"{server}/v1/rollouts")
    for st in rows:
        _print_rollout(st)


def _rollout_action(action: str):
    def command(rollout_id: int = typer.Argument(...), server: str = _SERVER) -> None:
        _print_rollout(_server_call("POST", f"{server}/v1/rollouts/{rollout_id}/{action}"))

    command.__doc__ = {"pause": "Stop a rollout's cohorts from growing.", "resume": "Let a paused rollout grow again.",
                       "abort": "Abort a rollout and roll its robots back (a new release with the previous weights)."}[action]
    return command


for _action in ("pause", "resume", "abort"):
    rollout_app.command(_action)(_rollout_action(_action))


fleet_app = typer.Typer(help="Robots at work: shifts, shadow mode, telemetry.", no_args_is_help=True,
                        add_completion=False)
app.add_typer(fleet_app, name="fleet")


def _parse_orders(items: list[str], first_seed: int) -> list:
    from academy.fleet.robot import Order
    from academy.sim.tasks import REGISTRY

    orders, seed = [], first_seed
    for item in items:
        task, _, n = item.partition(":")
        if task not in REGISTRY:
            raise typer.BadParameter(f"unknown task {task!r} in order {item!r}; known: {sorted(REGISTRY)}")
        if n and not n.isdigit():
            raise typer.BadParameter(f"an order looks like TASK or TASK:EPISODES, got {item!r}")
        for _ in range(int(n or 1)):
            orders.append(Order(task, seed))
            seed += 1
    return orders


@fleet_app.command("work")
def fleet_work(
    root: Path = typer.Option(..., help="the robot's folder (slots, state, spool)"),
    serial: str = typer.Option(..., help="robot serial"),
    profile: str = typer.Option("ah1-sim", help="the robot's hardware profile"),
    order: list[str] = typer.Option(..., "--order", "-o", help="TASK or TASK:EPISODES, in order (repeat)"),
    first_seed: int = typer.Option(0, help="scene seed of the first order; each order takes the next"),
    server: str = _SERVER,
    trusted_root: Optional[Path] = typer.Option(None, help="root metadata to embed if the robot is not provisioned yet"),
    battery_steps: int = typer.Option(6000, min=1, help="control steps of work on a full charge"),
    realtime: bool = typer.Option(False, help="pace the control loop to 20 Hz (default: as fast as it runs)"),
    out: Optional[Path] = typer.Option(None, help="write the shift summary as JSON here"),
) -> None:
    """A robot works a shift of task orders: 20 Hz control with deadline counts, battery and dock (the install
    window), shadow runs when a rollout asks, telemetry spooled on its disk and uploaded, failures first."""
    from academy.exam.profiles import profile as hardware
    from academy.fleet.robot import FleetRobot, RobotConfig

    hardware(profile)
    orders = _parse_orders(order, first_seed)
    if not (root / "state.json").exists() and trusted_root is None:
        raise typer.BadParameter(f"{root} is not provisioned: give --trusted-root (the repository's 1.root.json)")
    robot = FleetRobot(root, serial, profile, server, RobotConfig(battery_steps=battery_steps, realtime=realtime),
                       trusted_root=trusted_root.read_bytes() if trusted_root else None)
    with _progress() as progress:
        bar = progress.add_task(f"{serial}: shift", total=len(orders))
        summary = robot.work(orders, on_episode=lambda ep: progress.update(
            bar, advance=1, description=f"{serial}: {ep.task} seed {ep.seed} {'ok' if ep.success else 'failed'}"))
    s = summary.to_dict()
    table = Table("release", "episodes", "successes")
    for rel, (wins, n) in s["releases"].items():
        table.add_row(str(rel), str(n), f"{wins} ({100 * wins / n:.0f}%)")
    console.print(table)
    console.print(f"safety stops {s['safety_stops']}; deadline misses {s['deadline_misses']} of {s['control_steps']} "
                  f"control steps (step p50 {s['step_ms_p50']:.1f} ms, p99 {s['step_ms_p99']:.1f} ms, budget "
                  f"{robot.cfg.deadline_ms:.0f} ms); docks {s['docks']}; updates {s['installs'] or 'none'}; battery "
                  f"{s['battery']:.0%}; telemetry sent {s['upload']['sent']}, waiting {s['upload']['left']}"
                  + (f" ({s['upload']['error']})" if s["upload"]["error"] else ""))
    for rel, sh in s["shadow"].items():
        console.print(f"shadow of release {rel}: {sh['steps']} steps, mean divergence "
                      f"{sh['divergence_sum'] / max(1, sh['steps']):.4f} rad; would-be success "
                      f"{sh['would_be_successes']}/{sh['judged']} (active {sh['active_successes']})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(s, indent=1))


@fleet_app.command("shift")
def fleet_shift(
    root: Path = typer.Option(Path("robots"), help="folder of the robots' folders"),
    robots: int = typer.Option(8, min=1, help="robots in the fleet (serials AH1-0001..)"),
    order: list[str] = typer.Option(["handover:10"], "--order", "-o", help="each robot's orders: TASK or TASK:EPISODES"),
    profile: str = typer.Option("ah1-sim", help="the robots' hardware profile"),
    server: str = _SERVER,
    trusted_root: Optional[Path] = typer.Option(None, help="root metadata for robots not provisioned yet"),
    workers: int = typer.Option(2, min=1, help="robots working at once (one process or Ray task each)"),
    first_seed: int = typer.Option(0, help="scene seed of the first order; robots take consecutive seed ranges"),
    out: Optional[Path] = typer.Option(None, help="write the shift summaries as JSON here"),
    backend: str = typer.Option("local", help="local (spawned processes), or ray (Ray tasks: a local instance, "
                                "or the cluster RAY_ADDRESS names)"),
) -> None:
    """The whole fleet works a shift, each robot in its own process or Ray task, as `academy fleet work` does for one."""
    from academy.exam.profiles import profile as hardware
    from academy.fleet.robot import FLEET_BACKENDS, run_fleet

    hardware(profile)
    if backend not in FLEET_BACKENDS:
        raise typer.BadParameter(f"--backend must be one of {', '.join(FLEET_BACKENDS)}, got '{backend}'")
    serials = [f"AH1-{n:04d}" for n in range(1, robots + 1)]
    per = len(_parse_orders(order, 0))
    orders = {s: _parse_orders(order, first_seed + i * per) for i, s in enumerate(serials)}
    missing = [s for s in serials if not (root / s / "state.json").exists()]
    if missing and trusted_root is None:
        raise typer.BadParameter(f"{len(missing)} robots are not provisioned: give --trusted-root")
    with _progress() as progress:
        bar = progress.add_task("fleet shift (robots done)", total=robots)
        summaries = run_fleet(root, serials, orders, server, profile, trusted_root=trusted_root.read_bytes()
                              if trusted_root else None, workers=workers, on_robot=lambda s: progress.advance(bar),
                              backend=backend)
    table = Table("serial", "episodes", "successes", "safety stops", "deadline misses", "updates", "battery")
    for s in summaries:
        table.add_row(s["serial"], str(s["episodes"]), str(s["successes"]), str(s["safety_stops"]),
                      f"{s['deadline_misses']} / {s['control_steps']}", str(s["installs"] or "-"), f"{s['battery']:.0%}")
    console.print(table)
    wins, n = sum(s["successes"] for s in summaries), sum(s["episodes"] for s in summaries)
    console.print(f"fleet success {wins}/{n} ({100 * wins / max(1, n):.0f}%)")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summaries, indent=1))


@fleet_app.command("ingest")
def fleet_ingest(home: Path = _HOME) -> None:
    """Move uploaded fleet episodes from the server's inbox into its LeRobot dataset (each key once)."""
    from academy.fleet.telemetry import TelemetryStore

    r = TelemetryStore(home).ingest()
    console.print(f"ingested {r['added']} episodes ({r['duplicates_dropped']} already held, {r['damaged']} damaged); "
                  f"{home / 'fleet' / 'episodes'} holds {r['episodes']}")


@fleet_app.command("corrections")
def fleet_corrections(
    home: Path = _HOME,
    out: Optional[Path] = typer.Option(None, help="corrections dataset (default: HOME/fleet/corrections)"),
    workers: int = typer.Option(2, min=1, help="worker processes"),
) -> None:
    """Redo each failed fleet episode with the expert on the same robot and scene (a teleoperated correction),
    for the next training to weigh more (academy learn --weight correction=3)."""
    from academy.fleet.learnset import corrections

    fleet = home / "fleet" / "episodes"
    if not (fleet / "meta/info.json").exists():
        raise typer.BadParameter(f"{fleet} holds no fleet episodes yet: run `academy fleet ingest` first")
    with _progress() as progress:
        bar = progress.add_task("corrections", total=None)
        r = corrections(fleet, out or home / "fleet" / "corrections", workers, on_episode=lambda ok: progress.advance(bar))
    console.print(f"{r['redone']} failures redone ({r['corrections_succeeded']} corrections succeeded; "
                  f"{r['already_redone']} redone before; {r['failures']} failures in all) -> {r['dataset']}")


@fleet_app.command("status")
def fleet_status(server: str = _SERVER) -> None:
    """The fleet as the update server last saw it, and its telemetry counts."""
    table = Table("serial", "profile", "release", "agent", "battery", "charging", "last seen")
    for r in _server_call("GET", f"{server}/v1/robots"):
        table.add_row(r["serial"], r["profile"], str(r["installed_release"]), r["agent_state"], f"{r['battery']:.0%}",
                      "yes" if r["charging"] else "no", r["last_seen"][:19])
    console.print(table)
    t = _server_call("GET", f"{server}/v1/telemetry")
    console.print(f"telemetry: {t['inbox']} episodes in the inbox; events {t['events']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------------------------- command
planner_app = typer.Typer(help="Instruction planners: build, examine, point at a chat endpoint, release.",
                          no_args_is_help=True, add_completion=False)
app.add_typer(planner_app, name="planner")
_PLANNER = typer.Option(None, help="planner folder (default: the built-in offline planner, built on first use)")
HELDOUT_SET = Path("tests/data/instructions-heldout.jsonl")


def _plan_table(plan) -> Table:
    table = Table("step", "skill", "arguments", "from the words")
    for i, s in enumerate(plan.steps, 1):
        table.add_row(str(i), s.skill, json.dumps(s.args), s.clause)
    return table


@app.command("command")
def command_(
    text: str = typer.Argument(..., help='the instruction, e.g. "put the red cells in their bin, then seat the part"'),
    planner: Optional[Path] = _PLANNER,
    policy: Optional[Path] = typer.Option(None, help="carry the plan out with this policy (checkpoint folder)"),
    bundle: Optional[Path] = typer.Option(None, help="a release bundle (or a robot's installed slot): its planner "
                                                     "and its policy"),
    robot: Optional[str] = typer.Option(None, help="a reality robot's serial (default: the nominal simulation)"),
    seed: int = typer.Option(0, help="scene seed of the first step (each next step +1)"),
    video: Optional[Path] = typer.Option(None, help="write one mp4 per step into this folder"),
    as_json: bool = typer.Option(False, "--json", help="print the plan (and outcome) as JSON"),
) -> None:
    """Plain words to a checked plan of skills; with --policy or --bundle, carried out on a robot."""
    from academy.command.planner import PlannerError, load_planner
    from academy.command.run import CommandError, carry_out

    if bundle is not None:
        if not (bundle / "policy").is_dir():
            raise typer.BadParameter(f"{bundle} is not a release bundle: no policy/ folder")
        policy = policy or bundle / "policy"
        planner = planner or (bundle / "planner" if (bundle / "planner").is_dir() else None)
    try:
        p = load_planner(planner)
        plan = p.plan(text)
    except (PlannerError, RuntimeError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    if as_json and policy is None:
        print(json.dumps(plan.to_dict(), indent=1))
    elif plan.ok and not as_json:
        console.print(f"plan ({plan.planner}):")
        console.print(_plan_table(plan))
    if not plan.ok:
        if as_json and policy is not None:
            print(json.dumps({"plan": plan.to_dict(), "outcome": None}, indent=1))
        elif not as_json:
            console.print(f"refused ({plan.refused.kind}): {plan.refused.reason}"
                          + (f'\n  in: "{plan.refused.clause}"' if plan.refused.clause else ""))
        raise typer.Exit(3)
    if policy is None:
        return
    try:
        outcome = carry_out(plan, policy, p, robot, seed, video, on_step=None if as_json else lambda s: console.print(
            f"step {s['step']} {s['skill']}: {'done' if s['success'] else 'FAILED'} in {s['seconds']} s"
            + (f" ({s['video']})" if "video" in s else "")))
    except (CommandError, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"plan": plan.to_dict(), "outcome": outcome}, indent=1))
    else:
        cond = "its instruction vectors" if outcome["conditioned_on_instructions"] else \
            "task index only (trained without instructions)"
        console.print(f"{'done' if outcome['success'] else 'not done'} on {outcome['robot']}: "
                      f"{sum(s['success'] for s in outcome['steps'])}/{len(plan.steps)} steps; policy conditioned on {cond}")
    if not outcome["success"]:
        raise typer.Exit(1)


@planner_app.command("build")
def planner_build(
    out: Path = typer.Option(Path("academy-data/planner/custom"), help="planner folder to write"),
    version: str = typer.Option("1.0.0", help="the planner's version"),
    threshold: float = typer.Option(0.45, min=0.0, max=1.0, help="least similarity to an exemplar for a skill"),
) -> None:
    """Write an offline (embedding) planner folder."""
    from academy.command.planner import build_planner

    build_planner(out, version, threshold)
    console.print(f"planner {version}: {out}  (examine it: academy planner exam --planner {out})")


@planner_app.command("chat")
def planner_chat(
    endpoint: str = typer.Option(..., help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)"),
    model: str = typer.Option(..., help="the model name the endpoint serves"),
    out: Path = typer.Option(Path("academy-data/planner/chat"), help="planner folder to write"),
    version: str = typer.Option("1.0.0"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="environment variable holding the key, if it needs one"),
) -> None:
    """Write a planner folder that plans through a chat endpoint (JSON-schema output)."""
    from academy.command.chat import write_chat_planner

    write_chat_planner(out, endpoint, model, version=version, api_key_env=api_key_env)
    console.print(f"chat planner: {out}  (academy command --planner {out} \"...\")")


@planner_app.command("exam")
def planner_exam(
    planner: Optional[Path] = _PLANNER,
    instruction_set: Path = typer.Option(HELDOUT_SET, "--set", help="instruction set (JSON lines)"),
    out: Optional[Path] = typer.Option(None, help="also write the full report here"),
    show: int = typer.Option(10, help="wrong answers to print"),
) -> None:
    """The planner's exam: plan accuracy on an instruction set, latency after load; kept in the planner folder."""
    from academy.command.exam import GOALS, InstructionSetError, examine, save_exam
    from academy.command.planner import PlannerError, default_planner_dir, load_planner

    folder = planner or default_planner_dir()
    try:
        report = examine(load_planner(folder), instruction_set)
    except (InstructionSetError, PlannerError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    save_exam(folder, report)
    if out:
        out.write_text(json.dumps(report, indent=1))
    table = Table("measure", "value", "goal")
    table.add_row("plan accuracy", f"{report['accuracy']:.1%} ({report['plans_right'] + report['refusals_right']}"
                  f"/{report['n']})", f">= {GOALS['accuracy']:.0%}")
    table.add_row("plans right", f"{report['plans_right']}/{report['plans']}", "")
    table.add_row("refusals right (kind too)", f"{report['refusals_right']}/{report['refusals']}", "")
    table.add_row("refused when it should plan", str(report["false_refusals"]), "")
    table.add_row("latency p50 / p99", f"{report['latency_ms']['p50']:.1f} / {report['latency_ms']['p99']:.1f} ms",
                  f"p99 <= {GOALS['p99_ms']:.0f} ms")
    console.print(table)
    for w in report["wrong"][:show]:
        console.print(f"  wrong: \"{w['text']}\" expected {json.dumps(w['expected'])} got {json.dumps(w['got'])}")
    console.print(f"{'passed' if report['passed'] else 'FAILED'}; report kept in {folder / 'exam.json'}")
    if not report["passed"]:
        raise typer.Exit(1)


@planner_app.command("publish")
def planner_publish(
    planner: Path = typer.Option(..., help="an examined planner folder"),
    note: str = typer.Option("", help="a note kept with the release"),
    home: Path = _HOME,
    db: Optional[str] = _DB,
) -> None:
    """A new release with this planner and the current release's policy unchanged."""
    from academy.release.publish import ReleaseHome

    rh = ReleaseHome(home, db)
    try:
        pub = rh.publish_planner(planner, note)
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    d = pub.delta
    console.print(f"release {pub.release} (parent {pub.manifest['parent']}): planner "
                  f"{pub.manifest['planner']['version']}, policy unchanged; as a delta {d['delta_bytes'] / 1e3:.1f} kB "
                  f"of {d['full_bytes'] / 1e6:.1f} MB ({d['ratio']:.2%})")
