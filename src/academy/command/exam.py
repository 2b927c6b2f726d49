"""The planner's exam: plan accuracy on an instruction set and planning latency after load.

An instruction set is JSON lines: ``{"text": ..., "plan": [{"skill": ..., "args": {...}}]}`` or
``{"text": ..., "refuse": "unknown" | "impossible"}``. A plan is right when its steps and their
arguments equal the expected ones in order; a refusal is right when it is a refusal of the same
kind. Latency is each instruction planned once after the planner is loaded and warmed up.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from academy.command.planner import timed_plans
from academy.command.skills import normal_args

GOALS = {"accuracy": 0.95, "p99_ms": 50.0}


class InstructionSetError(ValueError):
    pass


def read_set(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise InstructionSetError(f"{path}: no such instruction set")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InstructionSetError(f"{path}:{n}: not JSON ({e})") from None
        if not isinstance(row.get("text"), str) or ("plan" in row) == ("refuse" in row):
            raise InstructionSetError(f"{path}:{n}: needs 'text' and exactly one of 'plan' or 'refuse'")
        if "plan" in row:
            row["plan"] = [{"skill": s["skill"], "args": normal_args(s["skill"], s.get("args"))} for s in row["plan"]]
        elif row["refuse"] not in ("unknown", "impossible"):
            raise InstructionSetError(f"{path}:{n}: refuse must be 'unknown' or 'impossible'")
        rows.append(row)
    return rows


def judge(row: dict, got: dict) -> bool:
    if "refuse" in row:
        return got.get("refuse") == row["refuse"]
    return "plan" in got and got["plan"] == row["plan"]


def examine(planner, path: str | Path, warmup: int = 5, goals: dict | None = None) -> dict:
    """The exam's report; ``goals`` (default ``GOALS``) decide whether it passed, and go into it."""
    goals = {**GOALS, **(goals or {})}
    rows = read_set(path)
    timed_plans(planner, [r["text"] for r in rows[:warmup]])
    plans, ms = timed_plans(planner, [r["text"] for r in rows])
    results = []
    for row, plan in zip(rows, plans):
        got = plan.to_dict()
        results.append({"text": row["text"], "expected": row.get("plan", {"refuse": row.get("refuse")}),
                        "got": got.get("plan", {"refuse": got.get("refuse"), "reason": got.get("reason")}),
                        "right": judge(row, got), "ms": round(ms[len(results)], 2)})
    right = np.array([r["right"] for r in results])
    refuse = np.array(["refuse" in r for r in rows])
    refused = np.array([p.refused is not None for p in plans])
    ms_arr = np.array(ms)
    report = {
        "planner": getattr(planner, "name", type(planner).__name__), "set": str(path), "n": len(rows),
        "accuracy": float(right.mean()), "plans_right": int(right[~refuse].sum()), "plans": int((~refuse).sum()),
        "refusals_right": int(right[refuse].sum()), "refusals": int(refuse.sum()),
        "refused_any_kind": int((refused & refuse).sum()), "false_refusals": int((refused & ~refuse).sum()),
        "latency_ms": {"p50": float(np.percentile(ms_arr, 50)), "p99": float(np.percentile(ms_arr, 99)),
                       "max": float(ms_arr.max())},
        "goals": goals, "wrong": [r for r in results if not r["right"]],
    }
    report["passed"] = report["accuracy"] >= goals["accuracy"] and report["latency_ms"]["p99"] <= goals["p99_ms"]
    return report


def save_exam(folder: str | Path, report: dict) -> Path:
    """The report into the planner folder, naming the planner it examined (its files' sha256)."""
    from academy.command.planner import EXAM_FILE, planner_digest

    path = Path(folder) / EXAM_FILE
    path.write_text(json.dumps(report | {"planner_sha256": planner_digest(folder)}, indent=1))
    return path


def passed_exam(folder: str | Path) -> dict:
    """The planner's exam report if it passed and was made on these very files; else PlannerError."""
    from academy.command.planner import EXAM_FILE, PlannerError, planner_digest

    path = Path(folder) / EXAM_FILE
    if not path.exists():
        raise PlannerError(f"the planner {folder} has not been examined: run `academy planner exam --planner {folder}`")
    report = json.loads(path.read_text())
    if report.get("planner_sha256") != planner_digest(folder):
        raise PlannerError(f"the planner {folder} changed since its exam: examine it again")
    if not report.get("passed"):
        goals = report.get("goals") or GOALS
        raise PlannerError(f"the planner {folder} failed its exam: accuracy {report['accuracy']:.1%} "
                           f"(goal {goals['accuracy']:.0%}), p99 {report['latency_ms']['p99']:.1f} ms "
                           f"(goal {goals['p99_ms']:g} ms)")
    return report
