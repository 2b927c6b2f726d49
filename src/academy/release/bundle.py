"""Bundles: everything a robot needs for one release, named by sha256 in one manifest.

A bundle is a folder of files and a ``manifest.json`` that names each of them by length and
sha256, and each file's 64 KiB chunks by sha256:

- ``policy/``: the policy checkpoint (``weights.pt``, ``config.json``, ``stats.json``, the
  practice residual if any) and its ONNX export (``model.onnx``);
- ``skills.json``: the skill library (name, description, required hardware);
- ``calibration.json``: the robot model's joint calibration the policy was trained against
  (joint order, zero offsets, ranges, control rate);
- ``safety_limits.json``: the limits the exam checked, which the robot's runtime enforces;
- ``hardware_profiles.json``: the profiles the policy fits and the latency and memory measured;
- ``exam.json``: the exam report, per episode;
- ``planner/`` (when the release has one): the instruction planner (``academy.command``), with its
  own version and its own exam (``planner/exam.json``). It ships apart from the policy weights: a
  policy release carries the current planner over unchanged, and a planner release
  (``ReleaseHome.publish_planner``) carries the current policy over, so a delta holds only the part
  that changed.

The manifest also carries the release number, the parent release and the fitted profiles.
Chunks live in a content-addressed store (``chunks/<2 hex>/<sha256>``). A release ships as a
delta against its parent: only the chunks the parent does not have (``delta``). Unchanged
tensors keep their bytes and offsets inside ``weights.pt`` (torch's zip format stores each
tensor apart), so a fine-tune that leaves the base network alone ships only what changed.
``assemble`` rebuilds a bundle from chunks, verifying every chunk and file; ``verify_bundle``
checks a bundle folder against its manifest. Both name the file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from academy.exam.exam import policy_digest
from academy.exam.profiles import PROFILES
from academy.exam.safety import SafetyLimits
from academy.sim import robot
from academy.sim.env import CONTROL_DT
from academy.sim.tasks import REGISTRY

FORMAT = "academy-bundle/1"
CHUNK = 64 * 1024
POLICY_FILES = ("config.json", "stats.json", "weights.pt", "model.onnx", "residual.json", "residual.pt",
                "instructions.json")
REQUIRED_ARMS = {"handover": ["right", "left"], "place_part": ["right"], "sort_cells": ["right", "left"]}


class BundleError(ValueError):
    """A bundle that does not match its manifest, or a manifest that is not well formed."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _chunks(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]


def skill_library(skills: list[str]) -> list[dict]:
    return [{"name": s, "description": REGISTRY[s].description,
             "required_hardware": {"robot": "AH-1", "arms": REQUIRED_ARMS.get(s, list(robot.SIDES)),
                                   "hands": "three-finger", "control_rate_hz": round(1 / CONTROL_DT)}}
            for s in skills]


def calibration() -> dict:
    from academy.sim.world import load_model

    m = load_model()
    jid = [m.joint(j).id for j in robot.JOINTS]
    return {"robot": "AH-1", "joints": list(robot.JOINTS), "zero_offsets": [0.0] * robot.N_ACTUATORS,
            "ranges": m.jnt_range[jid].round(6).tolist(), "home": list(robot.HOME),
            "control_dt": CONTROL_DT, "note": "nominal calibration of the robot model the policy was trained on"}


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))


def add_planner(planner_dir: str | Path, out: Path) -> dict:
    """Copy a planner folder (examined and passed) into ``out/planner``; its manifest entry."""
    from academy.command.exam import passed_exam
    from academy.command.planner import EXAM_FILE, PLANNER_FILES, planner_digest, read_spec

    planner_dir = Path(planner_dir)
    spec, report = read_spec(planner_dir), passed_exam(planner_dir)
    (out / "planner").mkdir()
    for f in (*PLANNER_FILES, EXAM_FILE):
        if (planner_dir / f).exists():
            shutil.copyfile(planner_dir / f, out / "planner" / f)
    return {"kind": spec["kind"], "version": spec["version"], "sha256": planner_digest(planner_dir),
            "exam": {"accuracy": report["accuracy"], "n": report["n"], "p99_ms": report["latency_ms"]["p99"]}}


def check_conditioning(policy_dir: Path, planner_dir: Path) -> None:
    """A policy trained with instruction vectors ships only with a planner that has the same ones."""
    from academy.command.planner import other_vector, read_spec

    file = policy_dir / "instructions.json"
    if not file.exists():
        return
    trained = json.loads(file.read_text())["vectors"]
    have = read_spec(planner_dir).get("skill_vectors") or {}
    differ = [t for t, v in trained.items() if t not in have or other_vector(v, have[t])]
    if differ:
        raise BundleError(f"the planner {planner_dir} would condition {differ} with other vectors than the policy "
                          "was trained with: ship the planner of its instructions.json, or train the policy again")


def build_bundle(policy_dir: str | Path, exam: dict, release: int, parent: int | None, out: str | Path,
                 limits: SafetyLimits | None = None, planner_dir: str | Path | None = None) -> dict:
    """Write a bundle folder at ``out`` (replaced if present) and return its manifest."""
    policy_dir, out = Path(policy_dir), Path(out)
    if release < 1:
        raise BundleError(f"release numbers start at 1, got {release}")
    if out.exists():
        shutil.rmtree(out)
    (out / "policy").mkdir(parents=True)
    present = [f for f in POLICY_FILES if (policy_dir / f).exists()]
    for required in ("config.json", "weights.pt"):
        if required not in present:
            raise BundleError(f"{policy_dir} is not a policy checkpoint: {required} missing")
    for f in present:
        shutil.copyfile(policy_dir / f, out / "policy" / f)
    skills = [s for s, v in exam["skills"].items() if not v.get("missing")]
    inference = exam.get("inference") or {}
    fits = list(inference.get("fits", []))
    limits = limits or SafetyLimits.from_dict(exam["config"]["limits"])
    _write_json(out / "skills.json", skill_library(skills))
    _write_json(out / "calibration.json", calibration())
    _write_json(out / "safety_limits.json", limits.to_dict())
    _write_json(out / "hardware_profiles.json", {"fits": fits, "measured": inference,
                                                  "profiles": {n: PROFILES[n].__dict__ for n in fits}})
    _write_json(out / "exam.json", exam)
    planner = None
    if planner_dir is not None:
        check_conditioning(policy_dir, Path(planner_dir))
        planner = add_planner(planner_dir, out)
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files[path.relative_to(out).as_posix()] = {"sha256": sha256_bytes(data), "length": len(data),
                                                   "chunks": [sha256_bytes(c) for c in _chunks(data)]}
    manifest = {"format": FORMAT, "release": int(release), "parent": parent,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "policy_sha256": policy_digest(policy_dir), "skills": skills, "hardware_profiles": fits,
                "safety_limits": limits.to_dict(), "planner": planner, "chunk_size": CHUNK, "files": files}
    _write_json(out / "manifest.json", manifest)
    return manifest


def load_manifest(path: str | Path) -> dict:
    path = Path(path)
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: no manifest") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: manifest is not valid JSON ({e})") from None
    check_manifest(m, str(path))
    return m


def check_manifest(m: dict, where: str = "manifest") -> None:
    for key, kind in (("format", str), ("release", int), ("files", dict), ("chunk_size", int)):
        if not isinstance(m.get(key), kind):
            raise BundleError(f"{where}: field '{key}' missing or not a {kind.__name__}")
    if m["format"] != FORMAT:
        raise BundleError(f"{where}: format {m['format']!r} is not {FORMAT!r}")
    for name, f in m["files"].items():
        if name.startswith("/") or ".." in Path(name).parts:
            raise BundleError(f"{where}: file name {name!r} leaves the bundle")
        for key in ("sha256", "length", "chunks"):
            if key not in f:
                raise BundleError(f"{where}: file {name!r} has no '{key}'")


def verify_bundle(bundle_dir: str | Path, manifest: dict | None = None) -> dict:
    """Check every file of a bundle folder against the manifest; returns the manifest."""
    bundle_dir = Path(bundle_dir)
    manifest = manifest or load_manifest(bundle_dir / "manifest.json")
    check_manifest(manifest)
    for name, f in manifest["files"].items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir}: file {name} is missing")
        size = path.stat().st_size
        if size != f["length"]:
            raise BundleError(f"bundle {bundle_dir}: file {name} has {size} bytes, the manifest says {f['length']}")
        digest = sha256_file(path)
        if digest != f["sha256"]:
            raise BundleError(f"bundle {bundle_dir}: file {name} has sha256 {digest}, the manifest says {f['sha256']}")
    extra = sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*")
                   if p.is_file() and p.name != "manifest.json")
    unknown = [e for e in extra if e not in manifest["files"]]
    if unknown:
        raise BundleError(f"bundle {bundle_dir}: files not in the manifest: {unknown}")
    return manifest


# ---------------------------------------------------------------------- chunks and deltas
def chunk_path(store: Path, digest: str) -> Path:
    return store / digest[:2] / digest


def store_chunks(bundle_dir: str | Path, manifest: dict, store: str | Path) -> int:
    """Put a bundle's chunks in a content-addressed store; returns the bytes newly stored."""
    bundle_dir, store = Path(bundle_dir), Path(store)
    added = 0
    for name, f in manifest["files"].items():
        data = (bundle_dir / name).read_bytes()
        for digest, chunk in zip(f["chunks"], _chunks(data)):
            if sha256_bytes(chunk) != digest:
                raise BundleError(f"bundle {bundle_dir}: file {name} does not match its manifest chunks")
            dest = chunk_path(store, digest)
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_suffix(".tmp")
                tmp.write_bytes(chunk)
                os.replace(tmp, dest)
                added += len(chunk)
    return added


def chunk_sizes(manifest: dict) -> dict[str, int]:
    """sha256 -> length of every distinct chunk in a manifest."""
    out = {}
    cs = manifest["chunk_size"]
    for f in manifest["files"].values():
        n = len(f["chunks"])
        for i, d in enumerate(f["chunks"]):
            out[d] = cs if i < n - 1 else f["length"] - cs * (n - 1)
    return out


def delta(manifest: dict, parent: dict | None) -> dict:
    """What a robot holding ``parent`` must fetch for ``manifest``: chunks and bytes, against the full size."""
    sizes = chunk_sizes(manifest)
    have = set(chunk_sizes(parent)) if parent else set()
    need = {d: n for d, n in sizes.items() if d not in have}
    full = sum(f["length"] for f in manifest["files"].values())
    shipped = sum(need.values())
    return {"chunks": len(need), "delta_bytes": shipped, "full_bytes": full,
            "ratio": round(shipped / full, 4) if full else 0.0,
            "parent": parent["release"] if parent else None, "release": manifest["release"]}


def assemble(manifest: dict, store: str | Path, dest: str | Path) -> Path:
    """Rebuild a bundle folder from the chunk store, verifying every chunk and file; writes
    into a temporary sibling folder and renames it into place only when all is verified."""
    check_manifest(manifest)
    store, dest = Path(store), Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, f in manifest["files"].items():
        parts = []
        for digest in f["chunks"]:
            path = chunk_path(store, digest)
            if not path.exists():
                raise BundleError(f"chunk {digest} of {name} is not in the store {store}")
            data = path.read_bytes()
            if sha256_bytes(data) != digest:
                raise BundleError(f"chunk {digest} of {name} in {store} is corrupt (its sha256 is {sha256_bytes(data)})")
            parts.append(data)
        data = b"".join(parts)
        if sha256_bytes(data) != f["sha256"] or len(data) != f["length"]:
            raise BundleError(f"file {name} assembled from its chunks does not match the manifest's sha256")
        out = tmp / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    _write_json(tmp / "manifest.json", manifest)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest

