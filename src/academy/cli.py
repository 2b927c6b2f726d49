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

  ground    built    MuJoCo workcell, tasks, experts, reality robots  (academy run, tasks, expert)
  watch     planned  robot demonstrations from human video
  learn     planned  one policy for every skill
  practice  planned  RL in simulation with randomization and curriculum
  dream     planned  world model and imagined training
  exam      planned  regression suite and safety gate
  release   planned  registry and signed bundles
  deploy    planned  staged over-the-air rollout with rollback
  fleet     planned  robots at work, shadow mode, telemetry
  command   planned  plain-language instructions to skill plans
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
    out = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"difficulty must look like knob=value, got '{item}'")
        k, v = item.split("=", 1)
        try:
            out[k] = int(v) if v.lstrip("-").isdigit() else float(v)
        except ValueError:
            raise typer.BadParameter(f"difficulty '{k}' needs a number, got '{v}'") from None
    return out


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
    from academy.sim.video import write_mp4

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


@app.command()
def run(
    episodes: int = typer.Option(10, min=1, help="expert episodes per task"),
    workspace: Path = typer.Option(Path("academy-data"), help="workspace directory"),
) -> None:
    """Run every stage that exists. Now: each task done by its expert, success printed, videos written."""
    from academy.sim.rollout_expert import run_expert
    from academy.sim.tasks import REGISTRY
    from academy.sim.video import write_mp4

    run_dir = workspace / "runs" / time.strftime("%Y%m%d-%H%M%S")
    summary = {"stages": {"ground": {}}}
    table = Table("task", "expert success (nominal sim)", "mean episode time", "video")
    with _progress() as progress:
        for task in REGISTRY:
            bar = progress.add_task(f"ground: {task} expert", total=episodes)
            results = run_expert(task, list(range(episodes)), video_seeds=(0,),
                                 on_episode=lambda r: progress.advance(bar))
            video = write_mp4(run_dir / "videos" / f"{task}.mp4", results[0].frames)
            wins = sum(r.success for r in results)
            mean_t = sum(r.seconds for r in results) / len(results)
            summary["stages"]["ground"][task] = {
                "episodes": episodes, "successes": wins, "mean_seconds": mean_t, "video": str(video)
            }
            table.add_row(task, f"{wins}/{episodes} ({100 * wins / episodes:.0f}%)", f"{mean_t:.1f} s", str(video))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(table)
    console.print(f"run folder: {run_dir}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
