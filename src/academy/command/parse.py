"""Words to clauses in order, and each clause's arguments: the small parser beside the embedding.

The embedding model says which skill a clause asks for; this reads what a sentence embedding is
poor at: sequencing words (then, after that, before, after, once), counts, colours (of the cells
and of a bin), hands (with, from, to), and the objects and destinations named. All of it is plain
regular expressions over lower-case text, so it is fast and its mistakes can be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from academy.sim.world import COLOURS

OTHER_COLOURS = ("yellow", "purple", "orange", "white", "black", "pink", "grey", "gray", "brown", "violet",
                 "cyan", "magenta", "silver", "gold", "teal")
COLOUR_WORDS = COLOURS + OTHER_COLOURS
NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    " seventeen eighteen nineteen twenty".split())}
VERBS = ("put", "place", "seat", "sort", "bin", "hand", "pass", "move", "insert", "fit", "mount", "give", "drop",
         "take", "pick", "set", "lay", "transfer", "swap", "slot", "press", "install", "get", "do", "tidy",
         "organise", "organize", "clear", "match", "separate", "bring", "open", "make", "go", "clean", "stack",
         "seat", "sing", "play", "turn", "fly", "rotate", "check", "wave", "throw", "paint", "count", "charge")
_VERB = r"(?:please\s+)?(?:" + "|".join(VERBS) + r")\b"
# separators that keep the order: the right side comes after the left
_THEN = re.compile(r"\s*(?:[;.]\s*|,?\s*\b(?:and\s+)?(?:then|after\s+that|afterwards|next|finally|followed\s+by)\b,?\s*)")
_AND_VERB = re.compile(r",?\s+and\s+(?=" + _VERB + r")|,\s+(?=" + _VERB + ")")
_LEAD = re.compile(r"^(?:(?:and|first|firstly|also|please|now|so)\b[,\s]*)+")


@dataclass
class Clause:
    text: str
    colours: list[str] = field(default_factory=list)  # of the cells (or, with no cells named, of the objects)
    bin_colours: list[str] = field(default_factory=list)
    count: int | None = None
    objects: set[str] = field(default_factory=set)  # "cells", "part"
    destinations: set[str] = field(default_factory=set)  # "bin", "fixture", "tray"
    hand_with: str | None = None  # "with/using the left hand"
    from_hand: str | None = None
    to_hand: str | None = None


def normalise(text: str) -> str:
    t = text.lower().replace("’", "'")
    t = re.sub(r"[!?]+", ".", t)
    t = re.sub(r"\s+", " ", t).strip(" .")
    return t


def _order(piece: str) -> list[str]:
    """before/after/once inside one piece: the clauses in the order they are to be done."""
    m = re.match(r"^(?:before|until)\s+(.+?),\s*(.+)$", piece)
    if m:  # before B, A
        return [m.group(2), m.group(1)]
    m = re.match(r"^(?:after|once|when)\s+(.+?),\s*(.+)$", piece)
    if m:  # after A, B
        return [m.group(1), m.group(2)]
    m = re.match(r"^(.+?)\s+before\s+(.+)$", piece)
    if m:  # A before B
        return [m.group(1), m.group(2)]
    m = re.match(r"^(.+?)\s+(?:after|once|when)\s+(.+)$", piece)
    if m and re.search(_VERB, m.group(1)):  # B after A ("sort the cells after seating the part")
        return [m.group(2), m.group(1)]
    return [piece]


def split_clauses(text: str) -> list[str]:
    """The clauses of an instruction, in the order they are to be done."""
    out: list[str] = []
    for piece in _THEN.split(normalise(text)):
        for part in _order(piece.strip(" ,")):
            for clause in _AND_VERB.split(part):
                clause = _LEAD.sub("", clause.strip(" ,")).strip(" ,")
                if clause:
                    out.append(clause)
    return out


HAND_WITH = re.compile(r"\b(?:with|using|use)\s+(?:your\s+|the\s+|its\s+)?(left|right)(?:\s+hand)?\b(?:\s+to\b)?")


def core(clause: str) -> str:
    """The clause without "with the left hand": hands are the parser's to read, not the embedding's."""
    return re.sub(r"\s+", " ", HAND_WITH.sub(" ", clause)).strip() or clause


def read_args(clause: str) -> Clause:
    c = Clause(clause)
    words = clause
    for m in re.finditer(r"\b(" + "|".join(COLOUR_WORDS) + r")\b(\s+bins?\b)?", words):
        (c.bin_colours if m.group(2) else c.colours).append("gray" if m.group(1) == "grey" else m.group(1))
    c.colours = list(dict.fromkeys(c.colours))
    m = re.search(r"\b(\d+|" + "|".join(NUMBERS) + r")\s+(?:(?:" + "|".join(COLOUR_WORDS) + r")\s+)?"
                  r"(?:(?:battery|batteries)\s+)?(?:cells?|batteries|ones)\b", words)
    if m:
        c.count = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
    if re.search(r"\b(cells?|batter(y|ies))\b", words):
        c.objects.add("cells")
    if re.search(r"\bparts?\b", words):
        c.objects.add("part")
    for dest, pattern in (("bin", r"\bbins?\b|\btheirs\b"), ("fixture", r"\bfixtures?\b|\bsockets?\b"),
                          ("tray", r"\btray\b")):
        if re.search(pattern, words):
            c.destinations.add(dest)
    m = HAND_WITH.search(words)
    if m:
        c.hand_with = m.group(1)
    m = re.search(r"\bfrom\s+(?:your\s+|the\s+)?(left|right)\b", words)
    if m:
        c.from_hand = m.group(1)
    m = re.search(r"\b(?:to|into|over\s+to)\s+(?:your\s+|the\s+|its\s+)?(left|right)\b", words)
    if m:
        c.to_hand = m.group(1)
    return c
