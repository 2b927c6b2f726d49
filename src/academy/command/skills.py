"""The skill library a plan is checked against, and the plan itself.

A skill is one task of the registry with the arguments a person may give it: which colours of
cell, how many, which hand. ``check_step`` is the one place that says what the robot can do; the
offline planner and the chat-endpoint planner both go through it, so neither can hand the robot
a step it has no skill for. A refusal says which kind (``unknown``: nothing in the library does
that; ``impossible``: a skill fits but not with those arguments) and why, naming the clause.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from academy.sim.world import COLOURS, N_CELLS

ALL = "all"


@dataclass(frozen=True)
class Skill:
    name: str  # the task in the registry that carries it out
    text: str  # its normal form in words: the policy is conditioned on this text's embedding
    objects: tuple[str, ...]  # what it moves
    destination: str  # where that goes
    args: dict  # argument -> what it may be (documentation and the chat planner's JSON schema)


LIBRARY: dict[str, Skill] = {
    s.name: s for s in (
        Skill("sort_cells", "sort the battery cells into the bins of their colours", ("cells",), "bin",
              {"colours": f"'all' or a list drawn from {list(COLOURS)}", "count": f"null or 1..{N_CELLS}"}),
        Skill("place_part", "pick up the part and seat it in the fixture's socket", ("part",), "fixture",
              {"hand": "'right' (the only hand the skill uses)"}),
        Skill("handover", "pick up the part with the right hand, pass it to the left hand, and place it on the tray",
              ("part",), "tray", {"from_hand": "'right'", "to_hand": "'left'"}),
    )
}
DEFAULT_ARGS = {"sort_cells": {"colours": ALL, "count": None}, "place_part": {"hand": "right"},
                "handover": {"from_hand": "right", "to_hand": "left"}}


@dataclass
class Step:
    skill: str
    args: dict
    clause: str = ""  # the words it came from

    def to_dict(self) -> dict:
        return {"skill": self.skill, "args": self.args}

    def describe(self) -> str:
        a = self.args
        if self.skill == "sort_cells":
            which = "every" if a["colours"] == ALL else " and ".join(a["colours"])
            n = "" if a["count"] is None else f" ({a['count']} cells)"
            return f"sort_cells: {which} cell into the bin of its colour{n}"
        if self.skill == "handover":
            return f"handover: part from the {a['from_hand']} hand to the {a['to_hand']}, onto the tray"
        return f"place_part: part into the fixture with the {a['hand']} hand"


@dataclass
class Refusal:
    kind: str  # "unknown" or "impossible"
    reason: str
    clause: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}" + (f" (in \"{self.clause}\")" if self.clause else "")


@dataclass
class Plan:
    text: str
    steps: list[Step] = field(default_factory=list)
    refused: Refusal | None = None
    planner: str = ""  # name and version of the planner that made it

    @property
    def ok(self) -> bool:
        return self.refused is None

    def to_dict(self) -> dict:
        out = {"text": self.text, "planner": self.planner}
        if self.refused:
            out["refuse"] = self.refused.kind
            out["reason"] = self.refused.reason
            out["clause"] = self.refused.clause
        else:
            out["plan"] = [s.to_dict() for s in self.steps]
        return out


class PlanError(ValueError):
    """A step that is not well formed (wrong fields or types): a planner's fault, not the user's."""


def normal_args(skill: str, args: dict | None) -> dict:
    """Arguments with defaults filled and colours in one order; raises PlanError on bad types."""
    if skill not in LIBRARY:
        raise PlanError(f"no skill '{skill}' in the library ({', '.join(LIBRARY)})")
    out = dict(DEFAULT_ARGS[skill])
    extra = set(args or {}) - set(out)
    if extra:
        raise PlanError(f"{skill} takes no argument(s) {sorted(extra)}; it takes {sorted(out)}")
    out.update({k: v for k, v in (args or {}).items() if v is not None or k == "count"})
    if skill == "sort_cells":
        c = out["colours"]
        if isinstance(c, str) and c != ALL:
            c = [c]
        if isinstance(c, list):
            if not all(isinstance(x, str) for x in c) or not c:
                raise PlanError(f"sort_cells colours must be 'all' or a non-empty list of names, got {c!r}")
            c = sorted(set(x.lower() for x in c))
            c = ALL if set(c) == set(COLOURS) else c
        out["colours"] = c
        if out["count"] is not None and (isinstance(out["count"], bool) or not isinstance(out["count"], int)):
            raise PlanError(f"sort_cells count must be a whole number or null, got {out['count']!r}")
    return out


def check_step(skill: str, args: dict | None, clause: str = "") -> Step | Refusal:
    """A step the library can do, or the refusal that says why not."""
    if skill not in LIBRARY:
        return Refusal("unknown", f"no skill in the library does that (skills: {', '.join(LIBRARY)})", clause)
    a = normal_args(skill, args)
    if skill == "sort_cells":
        if a["colours"] != ALL:
            bad = [c for c in a["colours"] if c not in COLOURS]
            if bad:
                return Refusal("impossible", f"there are no {' or '.join(bad)} cells: cells are {', '.join(COLOURS)}",
                               clause)
        if a["count"] is not None and not 1 <= a["count"] <= N_CELLS:
            return Refusal("impossible", f"the bench holds 1 to {N_CELLS} cells, not {a['count']}", clause)
    elif skill == "place_part":
        if a["hand"] != "right":
            return Refusal("impossible", f"place_part seats the part with the right hand only, not the {a['hand']}",
                           clause)
    elif skill == "handover":
        if (a["from_hand"], a["to_hand"]) != ("right", "left"):
            return Refusal("impossible", "handover passes the part from the right hand to the left only, not from "
                           f"the {a['from_hand']} to the {a['to_hand']}", clause)
    return Step(skill, a, clause)


def plan_from_steps(text: str, items: list[Step | Refusal], planner: str) -> Plan:
    """A plan from checked steps: refused if any clause was (unknown first), steps merged where a
    clause only restated the one before (a pick-up then its place)."""
    refusals = [i for i in items if isinstance(i, Refusal)]
    if refusals:
        first = next((r for r in refusals if r.kind == "unknown"), refusals[0])
        return Plan(text, [], first, planner)
    steps: list[Step] = []
    for s in items:
        if not steps or steps[-1].to_dict() != s.to_dict():
            steps.append(s)
    if not steps:
        return Plan(text, [], Refusal("unknown", "nothing to do: no skill asked for"), planner)
    return Plan(text, steps, None, planner)


def plan_schema() -> dict:
    """The JSON schema a chat planner's answer must follow."""
    step = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["skill", "args"],
         "properties": {"skill": {"const": "sort_cells"}, "args": {
             "type": "object", "additionalProperties": False,
             "properties": {"colours": {"anyOf": [{"const": ALL}, {"type": "array", "items": {"type": "string"}}]},
                            "count": {"type": ["integer", "null"]}}}}},
        {"type": "object", "additionalProperties": False, "required": ["skill", "args"],
         "properties": {"skill": {"const": "place_part"}, "args": {
             "type": "object", "additionalProperties": False, "properties": {"hand": {"type": "string"}}}}},
        {"type": "object", "additionalProperties": False, "required": ["skill", "args"],
         "properties": {"skill": {"const": "handover"}, "args": {
             "type": "object", "additionalProperties": False,
             "properties": {"from_hand": {"type": "string"}, "to_hand": {"type": "string"}}}}},
    ]}
    return {"type": "object", "additionalProperties": False, "required": ["steps", "refuse", "reason"],
            "properties": {"steps": {"type": "array", "items": step},
                           "refuse": {"enum": [None, "unknown", "impossible"]},
                           "reason": {"type": "string"}}}


def library_dict() -> list[dict]:
    return [asdict(s) for s in LIBRARY.values()]
