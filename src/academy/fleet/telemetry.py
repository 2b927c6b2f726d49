"""Telemetry: what robots at work send home at least once, and what the server keeps exactly once.

On the robot (``Spool``): every finished episode, event and shift report is first written to
the robot's disk (``spool/``, one file each, written durably: temporary file, fsync, rename),
named by an idempotency key made on the robot. ``flush`` uploads what waits, failed episodes
first, then events and reports, then the rest, oldest first within each; a file is deleted only
after the server has answered that it holds it (stored now, or already). While the server is
down nothing is lost: the flush stops at the first connection failure and the files wait for
the next one. A file the server refuses as malformed (HTTP 4xx) moves to ``spool/rejected/``
with the server's reason beside it: kept for a person, never retried, never silently dropped.

On the server (``TelemetryStore``, under the release home's ``fleet/``):

- an uploaded episode is checked (every feature the workcell records, with its shape, finite;
  task, outcome and serial named), then written durably to ``fleet/inbox/KEY.npz`` by a hard
  link from a temporary file: the link fails if the key is there already, so a retried upload
  is answered "duplicate" and a server killed at any point leaves the whole file or none;
- ``ingest`` moves the inbox into a LeRobot v3.0 dataset (``fleet/episodes``, source "fleet",
  with the robot's serial, release, outcome and the key as ``academy/key``): episodes whose
  key the dataset already holds are dropped, so a crash between the dataset's flush and the
  inbox files' removal duplicates nothing;
- events (installs, rollbacks, safety stops, deadline misses) go to the ``events`` table of the
  fleet database, unique by key.

The wire format of an episode is one ``.npz`` (numpy, no pickles): the frames under their
dataset feature names, and ``__meta__``, a JSON string.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np

from academy.data.layout import OUTCOMES
from academy.deploy.agent import fsync_dir, write_durable

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{7,127}$")
META = "__meta__"
EVENT_KINDS = ("install", "rollback", "rejected", "safety_stop", "deadline_miss", "dock", "shadow_start")
PRIORITY = {"failure": 0, "event": 1, "report": 1, "other": 2}  # failures go first


class TelemetryError(ValueError):
    """An upload the server cannot keep; the message names the problem."""


def new_key(serial: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', serial)[:60]}-{uuid.uuid4().hex}"


def pack_episode(frames: dict[str, np.ndarray], meta: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in frames.items()}, **{META: np.array(json.dumps(meta))})
    return buf.getvalue()


def unpack_episode(data: bytes, features: dict) -> tuple[dict[str, np.ndarray], dict]:
    """The frames and metadata of an uploaded episode, checked against the dataset ``features``."""
    from academy.sim.tasks import REGISTRY

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - whatever numpy says, it is not an episode
        raise TelemetryError(f"the upload is not an episode archive (.npz): {type(e).__name__}: {e}") from None
    if META not in arrays:
        raise TelemetryError("the episode archive has no metadata (__meta__)")
    try:
        meta = json.loads(str(arrays.pop(META)))
    except json.JSONDecodeError as e:
        raise TelemetryError(f"the episode metadata is not JSON: {e}") from None
    for field in ("key", "serial", "task", "outcome", "release"):
        if field not in meta:
            raise TelemetryError(f"the episode metadata lacks '{field}'")
    if not isinstance(meta["key"], str) or not KEY.match(meta["key"]):
        raise TelemetryError(f"idempotency key {meta['key']!r} is not 8-128 letters, digits, '.', '_' or '-'")
    if meta["task"] not in REGISTRY:
        raise TelemetryError(f"episode task {meta['task']!r} is not one of {sorted(REGISTRY)}")
    if meta["outcome"] not in OUTCOMES:
        raise TelemetryError(f"episode outcome {meta['outcome']!r} is not one of {OUTCOMES}")
    want = {k: f for k, f in features.items() if f["dtype"] != "video" and k not in
            ("timestamp", "frame_index", "episode_index", "index", "task_index")}
    missing, extra = set(want) - set(arrays), set(arrays) - set(want)
    if missing or extra:
        raise TelemetryError(f"episode features differ from the fleet dataset's: missing {sorted(missing)}, "
                             f"unexpected {sorted(extra)}")
    lengths = {k: len(v) for k, v in arrays.items()}
    T = lengths[next(iter(want))]
    if T == 0 or any(n != T for n in lengths.values()):
        raise TelemetryError(f"episode features must share one non-zero length, got {lengths}")
    for k, f in want.items():
        v = arrays[k]
        if v.reshape(T, -1).shape[1] != int(np.prod(f["shape"])):
            raise TelemetryError(f"feature '{k}' has shape {v.shape[1:]}, the dataset's is {f['shape']}")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise TelemetryError(f"feature '{k}' has NaN or infinite values")
    return arrays, meta


# ---------------------------------------------------------------------------------------- robot
class Spool:
    """The robot's outbox on its own disk (``root/spool``)."""

    def __init__(self, root: str | Path):
        self.dir = Path(root) / "spool"
        (self.dir / "rejected").mkdir(parents=True, exist_ok=True)

    def _put(self, priority: str, kind: str, key: str, data: bytes, suffix: str) -> str:
        name = f"{PRIORITY[priority]}-{time.time_ns():020d}-{kind}-{key}{suffix}"
        write_durable(self.dir / name, data)
        return key

    def add_episode(self, frames: dict[str, np.ndarray], meta: dict) -> str:
        meta = {**meta, "key": meta.get("key") or new_key(meta["serial"])}
        prio = "failure" if meta["outcome"] == "failure" else "other"
        return self._put(prio, "ep", meta["key"], pack_episode(frames, meta), ".npz")

    def add_event(self, serial: str, kind: str, release: int, detail: dict | None = None) -> str:
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r} is not one of {EVENT_KINDS}")
        key = new_key(serial)
        body = {"key": key, "serial": serial, "kind": kind, "release": int(release), "t": time.time(),
                "detail": detail or {}}
        return self._put("event", "ev", key, json.dumps(body).encode(), ".json")

    def add_report(self, health: dict) -> str:
        """A health report (shift or shadow) for ``/v1/health``, with its own key."""
        key = new_key(health["serial"])
        return self._put("report", "hl", key, json.dumps({**health, "key": key}).encode(), ".json")

    def pending(self) -> list[Path]:
        return sorted(p for p in self.dir.iterdir() if p.is_file() and not p.name.startswith("."))

    def counts(self) -> dict[str, int]:
        out = {"ep": 0, "ev": 0, "hl": 0}
        for p in self.pending():
            out[p.name.split("-")[2]] += 1
        out["rejected"] = sum(1 for p in (self.dir / "rejected").iterdir() if not p.name.endswith(".reason"))
        return out

    def flush(self, http, url: str, limit: int | None = None) -> dict:
        """Upload what waits (``http``: an httpx client). Returns counts; stops at the first
        connection failure or server error (5xx), leaving the rest for the next flush."""
        import httpx

        sent = dup = rejected = 0
        error = ""
        for path in self.pending()[:limit]:
            kind = path.name.split("-")[2]
            try:
                if kind == "ep":
                    r = http.post(f"{url}/v1/telemetry/episodes", content=path.read_bytes(),
                                  headers={"content-type": "application/octet-stream"})
                elif kind == "ev":
                    r = http.post(f"{url}/v1/telemetry/events", json=[json.loads(path.read_bytes())])
                else:
                    r = http.post(f"{url}/v1/health", json=json.loads(path.read_bytes()))
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
                break
            if r.status_code >= 500:
                error = f"HTTP {r.status_code}"
                break
            if r.status_code >= 400:  # the server will never take it: keep it aside with the reason
                os.replace(path, self.dir / "rejected" / path.name)
                (self.dir / "rejected" / f"{path.name}.reason").write_text(f"HTTP {r.status_code}: {r.text[:2000]}")
                rejected += 1
            else:
                dup += bool(r.json().get("duplicate"))
                sent += 1
                path.unlink()
            fsync_dir(self.dir)
        return {"sent": sent, "duplicates": dup, "rejected": rejected, "left": len(self.pending()), "error": error}


# ---------------------------------------------------------------------------------------- server
class TelemetryStore:
    """The server's side: the inbox, the fleet episode dataset and its ingestion."""

    def __init__(self, home: str | Path):
        from academy.data.collect import workcell_features

        self.root = Path(home) / "fleet"
        self.inbox = self.root / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.dataset_path = self.root / "episodes"
        self.features = workcell_features()
        self._keys: set[str] = set()  # the dataset's keys, as of the episode table stamped _keys_at
        self._keys_at: int | None = None

    def receive_episode(self, data: bytes) -> dict:
        frames, meta = unpack_episode(data, self.features)
        key = meta["key"]
        final = self.inbox / f"{key}.npz"
        tmp = self.inbox / f".{key}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, final)  # atomic, and fails if the key is here already
            duplicate = False
        except FileExistsError:
            duplicate = True
        finally:
            tmp.unlink()
        fsync_dir(self.inbox)
        duplicate = duplicate or key in self._ingested_keys()
        return {"key": key, "duplicate": duplicate, "frames": int(len(frames["action"]))}

    def _ingested_keys(self) -> set[str]:
        """Keys in the dataset (read when its episode table changed since the last look)."""
        from academy.data import Dataset

        info = self.dataset_path / "meta/info.json"
        if not info.exists():
            return set()
        stamp = info.stat().st_mtime_ns
        if self._keys_at != stamp:
            eps = Dataset(self.dataset_path).episodes
            self._keys = set(eps["academy/key"]) if "academy/key" in eps.columns else set()
            self._keys_at = stamp
        return self._keys

    def inbox_files(self) -> list[Path]:
        return sorted(self.inbox.glob("*.npz"))

    def ingest(self) -> dict:
        """Move the inbox into the fleet dataset; one ingestion at a time (a file lock)."""
        from academy.data import Dataset
        from academy.data.collect import FPS
        from academy.data.store import EpisodeMeta
        from academy.sim.tasks import make_task

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".ingest.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ds = (Dataset(self.dataset_path) if (self.dataset_path / "meta/info.json").exists()
                  else Dataset.create(self.dataset_path, FPS, self.features))
            have = set(ds.episodes["academy/key"]) if "academy/key" in ds.episodes.columns else set()
            added = dropped = bad = 0
            files = self.inbox_files()
            for start in range(0, len(files), 100):  # a flush per 100, then those inbox files go
                done = []
                with ds.writer(flush_every=10**9) as writer:
                    for path in files[start:start + 100]:
                        try:
                            frames, meta = unpack_episode(path.read_bytes(), self.features)
                        except TelemetryError as e:  # checked on arrival, so this is damage on the server's disk
                            os.replace(path, path.with_suffix(".damaged"))
                            path.with_suffix(".reason").write_text(str(e))
                            bad += 1
                            continue
                        done.append(path)
                        if meta["key"] in have:
                            dropped += 1
                            continue
                        have.add(meta["key"])
                        writer.add_episode(frames, EpisodeMeta(
                            task=meta["task"], source="fleet", robot_serial=meta["serial"],
                            release=str(meta["release"]), outcome=meta["outcome"], seed=int(meta.get("seed", -1)),
                            key=meta["key"]), make_task(meta["task"]).description)
                        added += 1
                for path in done:  # only once the dataset holds them
                    path.unlink()
                fsync_dir(self.inbox)
        return {"added": added, "duplicates_dropped": dropped, "damaged": bad, "episodes": Dataset(self.dataset_path).num_episodes}
