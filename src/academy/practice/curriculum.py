"""The curriculum: named terms, each a ladder of levels, promoted and demoted by success rate.

Every term belongs to one task (``"*"``: one copy per task) and is either a difficulty knob of
that task or ``randomization``, a factor that widens every training randomization range about
its nominal value (0: the nominal robot, 1: ``TRAINING_RANGES``, 2: twice as wide). The whole
curriculum is the one list ``TERMS`` below; ``Curriculum.levels()`` is what the run logs at
every update.

Rule, per task, after each update: once every one of the task's ``window`` scenes has finished
an episode that began after the task's last change, the success rate of those episodes (the
first per scene) decides: at least ``promote`` raises the first of its terms not at the top,
below ``demote`` lowers the term raised last. Counting the first episode of every scene, rather
than the first ``window`` episodes to end, matters: successes end early and failures run to the
time limit, so the first episodes to end after a change are mostly successes (an earlier version
promoted place_part at "94%" where the same level later gave 25%). A term's top is the target difficulty
(the task's default unless the run names another), so a run ends practising what it is
evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from academy.sim.randomize import TERMS as RANDOM_TERMS
from academy.sim.randomize import TRAINING_RANGES, RandomizationConfig, Term
from academy.sim.tasks import REGISTRY


@dataclass(frozen=True)
class CurriculumTerm:
    name: str  # a difficulty knob of the task, or "randomization"
    task: str  # a task name, or "*" for every task
    levels: tuple[float, ...]  # easiest first


TERMS: tuple[CurriculumTerm, ...] = (
    CurriculumTerm("randomization", "*", (0.0, 0.5, 1.0, 1.5, 2.0)),
    CurriculumTerm("n_cells", "sort_cells", tuple(range(1, 11))),
    CurriculumTerm("spread", "sort_cells", (0.3, 0.45, 0.6, 0.8, 1.0)),
    CurriculumTerm("clearance", "place_part", (0.008, 0.006, 0.004, 0.003, 0.002, 0.001)),
    CurriculumTerm("pose_spread", "place_part", (0.2, 0.35, 0.5, 0.75, 1.0)),
    CurriculumTerm("pose_spread", "handover", (0.2, 0.35, 0.5, 0.75, 1.0)),
    CurriculumTerm("target_spread", "handover", (0.2, 0.35, 0.5, 0.75, 1.0)),
)
TARGET_RANDOMIZATION = 1.0  # the top of the randomization ladder unless a run asks for another


def randomization_at(factor: float) -> RandomizationConfig | None:
    """Training ranges widened by ``factor`` about each term's nominal value (None at 0)."""
    if factor <= 0:
        return None
    terms = {}
    for name, (low, high) in TRAINING_RANGES.items():
        nominal = {"scale": 1.0, "offset": 0.0, "std": 0.0, "steps": 0.0}[RANDOM_TERMS[name].kind]
        lo, hi = nominal + factor * (low - nominal), nominal + factor * (high - nominal)
        if RANDOM_TERMS[name].kind == "steps":
            lo, hi = 0, int(round(hi))
        if RANDOM_TERMS[name].kind == "scale":
            lo = max(lo, 0.05)
        terms[name] = Term(lo, hi)
    return RandomizationConfig(terms)


@dataclass
class _Ladder:
    term: CurriculumTerm
    levels: tuple[float, ...]  # clipped to the target
    level: int = 0

    @property
    def value(self) -> float:
        return self.levels[self.level]


@dataclass
class Curriculum:
    """Per-task ladders; ``settings(task)`` is what a scene of that task resets with."""

    tasks: list[str]
    target: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> knob -> value
    enabled: bool = True
    promote: float = 0.8
    demote: float = 0.3
    window: int = 16

    def __post_init__(self) -> None:
        for task in self.tasks:
            if task not in REGISTRY:
                raise ValueError(f"unknown task '{task}'; known: {sorted(REGISTRY)}")
        self.ladders: dict[str, list[_Ladder]] = {t: [] for t in self.tasks}
        for term in TERMS:
            for task in self.tasks if term.task == "*" else [term.task]:
                if task not in self.tasks:
                    continue
                top = self._top(task, term.name)
                rising = term.levels[-1] >= term.levels[0]
                levels = tuple(v for v in term.levels if (v <= top if rising else v >= top))
                if not levels or levels[-1] != top:
                    levels = (*levels, top)
                ladder = _Ladder(term, levels)
                ladder.level = 0 if self.enabled else len(levels) - 1
                self.ladders[task].append(ladder)
        self._raised: dict[str, list[int]] = {t: [] for t in self.tasks}
        self._results: dict[str, dict[int, bool]] = {t: {} for t in self.tasks}  # scene -> first outcome
        self._since: dict[str, int] = {t: 0 for t in self.tasks}  # the update of the task's last change
        self.history: list[dict] = []

    def _top(self, task: str, name: str) -> float:
        wanted = self.target.get(task, {})
        if name == "randomization":
            return float(wanted.get("randomization", TARGET_RANDOMIZATION))
        knob = {k.name: k for k in REGISTRY[task].knobs}[name]
        return wanted.get(name, knob.default)

    def settings(self, task: str) -> tuple[dict[str, Any], RandomizationConfig | None]:
        """(difficulty, randomization) for a scene of ``task`` at the current levels."""
        difficulty: dict[str, Any] = {k: v for k, v in self.target.get(task, {}).items() if k != "randomization"}
        factor = 0.0
        for ladder in self.ladders[task]:
            if ladder.term.name == "randomization":
                factor = ladder.value
            else:
                difficulty[ladder.term.name] = ladder.value
        return difficulty, randomization_at(factor)

    def target_settings(self, task: str, randomization: float | None = None
                        ) -> tuple[dict[str, Any], RandomizationConfig | None]:
        """The target: every ladder at its top, the randomization practised for (or ``randomization``)."""
        difficulty: dict[str, Any] = {k: v for k, v in self.target.get(task, {}).items() if k != "randomization"}
        difficulty.update({ld.term.name: ld.levels[-1] for ld in self.ladders[task] if ld.term.name != "randomization"})
        return difficulty, randomization_at(self.target_randomization(task) if randomization is None else randomization)

    def target_randomization(self, task: str) -> float:
        """The top of the task's randomization ladder: the conditions a run practises for."""
        return self._top(task, "randomization")

    def levels(self) -> dict[str, dict[str, float]]:
        return {t: {ld.term.name: ld.value for ld in ladders} for t, ladders in self.ladders.items()}

    def positions(self) -> dict[str, dict[str, float]]:
        """Each ladder's position: 0 at its easiest level, 1 at the target."""
        return {t: {ld.term.name: (ld.level / (len(ld.levels) - 1) if len(ld.levels) > 1 else 1.0) for ld in ladders}
                for t, ladders in self.ladders.items()}

    def record(self, task: str, scene: int, success: bool, started: int) -> None:
        """An episode of ``task`` that scene ``scene`` began in update ``started`` ended."""
        if started > self._since[task]:
            self._results[task].setdefault(scene, bool(success))

    def update(self, step: int) -> list[str]:
        """Promote or demote each task once if its window is full; returns what changed."""
        changes = []
        for task in self.tasks:
            results = self._results[task]
            if not self.enabled or len(results) < self.window:
                continue
            rate = float(np.mean(list(results.values())))
            ladders = self.ladders[task]
            if rate >= self.promote:
                rising = [i for i, ld in enumerate(ladders) if ld.level < len(ld.levels) - 1]
                if rising:
                    i = rising[0]
                    ladders[i].level += 1
                    self._raised[task].append(i)
                    changes.append(f"{task}: {ladders[i].term.name} up to {ladders[i].value} (success {rate:.0%})")
            elif rate < self.demote and self._raised[task]:
                i = self._raised[task].pop()
                ladders[i].level -= 1
                changes.append(f"{task}: {ladders[i].term.name} down to {ladders[i].value} (success {rate:.0%})")
            self._results[task] = {}  # a new cohort: episodes begun after this update
            self._since[task] = step
        self.history.append({"step": step, "levels": self.levels(), "changes": changes})
        return changes

    def plan(self) -> dict[str, tuple[dict[str, Any], RandomizationConfig | None]]:
        """Every task's settings, as plain data for the rollout workers."""
        return {t: self.settings(t) for t in self.tasks}
