"""Whole-dataset validation: every file and field the layout promises, checked against the others."""

from __future__ import annotations

import numpy as np

from academy.data import layout as L
from academy.data.store import Dataset, DatasetError, _column_to_numpy
from academy.video import read_frames

EPISODE_COLUMNS = (
    "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
    "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index",
)


def validate(ds: Dataset, videos: bool = True) -> dict:
    """Raise DatasetError at the first problem; return a summary when all is well."""
    info_path = ds.root / L.INFO_PATH
    eps = ds.episodes
    ep_path = ds.root / L.EPISODES_DIR
    for col in EPISODE_COLUMNS:
        if col not in eps.columns and len(eps):
            raise DatasetError(ep_path, col, "missing")
    for key in ds.video_keys:
        for part in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
            if len(eps) and f"videos/{key}/{part}" not in eps.columns:
                raise DatasetError(ep_path, f"videos/{key}/{part}", "missing")
    if list(eps["episode_index"]) != list(range(len(eps))):
        raise DatasetError(ep_path, "episode_index", "not 0..N-1 in file order")
    lengths = eps["length"].to_numpy() if len(eps) else np.zeros(0, int)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(eps) else lengths
    if len(eps) and not np.array_equal(eps["dataset_from_index"].to_numpy(), starts):
        raise DatasetError(ep_path, "dataset_from_index", "episodes do not follow each other")
    if len(eps) and not np.array_equal(eps["dataset_to_index"].to_numpy(), starts + lengths):
        raise DatasetError(ep_path, "dataset_to_index", "is not dataset_from_index + length")
    for col in ("academy/source", "academy/outcome"):
        if col in eps.columns:
            allowed = L.SOURCES if col.endswith("source") else L.OUTCOMES
            bad = set(eps[col]) - set(allowed)
            if bad:
                raise DatasetError(ep_path, col, f"values {sorted(bad)} not in {allowed}")
    for field, value in (("total_episodes", len(eps)), ("total_frames", int(lengths.sum())), ("total_tasks", len(ds.tasks))):
        if ds.info[field] != value:
            raise DatasetError(info_path, field, f"{ds.info[field]}, but the episodes say {value}")
    for t in eps["tasks"] if len(eps) else []:
        for task in t:
            if task not in ds.tasks:
                raise DatasetError(ds.root / L.TASKS_PATH, "task", f"'{task}' used by an episode is not listed")

    # data files: schema, indices, timestamps, values
    for (chunk, file), group in eps.groupby(["data/chunk_index", "data/file_index"], sort=False):
        path = ds.data_file(chunk, file)
        table = ds._read_data_file(path)
        for key in ds.data_keys:
            if key not in table.column_names:
                raise DatasetError(path, key, "column missing")
        cols = {k: _column_to_numpy(table.column(k), ds.features[k]) for k in ds.data_keys}
        for k in ds.data_keys:
            if cols[k].dtype.kind == "f" and not np.all(np.isfinite(cols[k])):
                raise DatasetError(path, k, "NaN or infinite values")
        lo = int(group["dataset_from_index"].min())
        n = int(group["dataset_to_index"].max()) - lo
        if len(table) != n:
            raise DatasetError(path, "-", f"{len(table)} rows, the episodes say {n}")
        if not np.array_equal(cols["index"][:, 0], np.arange(lo, lo + n)):
            raise DatasetError(path, "index", "not contiguous with the episodes' dataset_from_index")
        for _, ep in group.iterrows():
            a, b = int(ep["dataset_from_index"]) - lo, int(ep["dataset_to_index"]) - lo
            if np.any(cols["episode_index"][a:b, 0] != ep["episode_index"]):
                raise DatasetError(path, "episode_index", f"rows of episode {ep['episode_index']} disagree")
            if not np.array_equal(cols["frame_index"][a:b, 0], np.arange(b - a)):
                raise DatasetError(path, "frame_index", f"episode {ep['episode_index']} not 0..length-1")
            if not np.allclose(cols["timestamp"][a:b, 0], np.arange(b - a) / ds.fps, atol=1e-4):
                raise DatasetError(path, "timestamp", f"episode {ep['episode_index']} not frame_index / fps")
        if np.any((cols["task_index"] < 0) | (cols["task_index"] >= len(ds.tasks))):
            raise DatasetError(path, "task_index", f"outside 0..{len(ds.tasks) - 1}")

    # videos: the files exist, decode, and hold each episode's frames
    for key in ds.video_keys:
        for _, ep in eps.iterrows():
            path = ds.video_file(key, ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"])
            if not path.exists():
                raise DatasetError(path, f"videos/{key}", f"missing: episode {ep['episode_index']} refers to it")
            span = ep[f"videos/{key}/to_timestamp"] - ep[f"videos/{key}/from_timestamp"]
            if abs(span * ds.fps - ep["length"]) > 0.5:
                raise DatasetError(ep_path, f"videos/{key}/to_timestamp", f"episode {ep['episode_index']} spans {span:.3f} s for {ep['length']} frames")
            if videos:
                try:
                    n = len(read_frames(path, ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]))
                except ValueError as e:
                    raise DatasetError(path, f"videos/{key}", str(e)) from e
                if n != ep["length"]:
                    raise DatasetError(path, f"videos/{key}", f"episode {ep['episode_index']}: {n} frames decoded, {ep['length']} expected")
    return {"episodes": len(eps), "frames": int(lengths.sum()), "tasks": len(ds.tasks), "videos": ds.video_keys}
