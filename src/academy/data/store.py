"""The episode store: datasets in LeRobot's v3.0 layout, written so that a crash loses at most
the episodes not yet flushed and never leaves the dataset unreadable.

Each flush of a writer adds one numbered file to each of data/, videos/<key>/ and
meta/episodes/ (LeRobot itself starts a new file when it resumes a dataset). Every file is
written under a temporary name and renamed into place; the episodes file is the commit point,
and info.json and stats.json are rewritten after it. Files that no episodes file refers to (a
crash between the renames) are removed by ``recover()``, which opening for append runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from academy.data import layout as L
from academy.data import stats as S
from academy.video import Mp4Writer, read_frames

TMP_SUFFIX = ".partial"


class DatasetError(ValueError):
    """A dataset that does not match the layout: the message names the file and the field."""

    def __init__(self, path: Path | str, field: str, problem: str):
        super().__init__(f"{path}: {field}: {problem}")
        self.path, self.field, self.problem = str(path), field, problem


@dataclass
class EpisodeMeta:
    """Academy's own fields of one episode (columns academy/* of meta/episodes)."""

    task: str
    source: str = "expert"
    robot_serial: str = "sim"
    release: str = ""
    outcome: str = "unknown"
    synthetic: bool = False
    seed: int = -1
    key: str = ""  # a fleet episode's idempotency key (academy.fleet.telemetry); empty otherwise

    def __post_init__(self):
        if self.source not in L.SOURCES:
            raise ValueError(f"episode source '{self.source}' is not one of {L.SOURCES}")
        if self.outcome not in L.OUTCOMES:
            raise ValueError(f"episode outcome '{self.outcome}' is not one of {L.OUTCOMES}")

    def columns(self) -> dict:
        return {f"academy/{k}": v for k, v in self.__dict__.items()}


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _atomic_write_bytes(path, lambda p: p.write_text(json.dumps(data, indent=4, ensure_ascii=False)))


def _arrow_type(dtype: str, shape) -> pa.DataType:
    base = pa.bool_() if dtype == "bool" else pa.from_numpy_dtype(np.dtype(dtype))
    if list(shape) == [1]:
        return base
    if len(shape) == 1:
        return pa.list_(base, int(shape[0]))
    raise ValueError(f"feature shape {shape} is not supported in the data table (only 1-D)")


class Dataset:
    """A LeRobot v3.0 dataset on disk. ``Dataset.create`` makes one, ``Dataset(root)`` opens one."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.info = self._load_info()
        self.tasks = self._load_tasks()
        self.episodes = self._load_episodes()
        self._episode_stats = None  # (per-feature lists of each episode's stats, episodes covered), see _write_summary
        self.stats = S.from_json(json.loads((self.root / L.STATS_PATH).read_text())) if (
            self.root / L.STATS_PATH
        ).exists() else {}

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, root: str | Path, fps: int, features: dict, robot_type: str = "academy_ah1") -> "Dataset":
        root = Path(root)
        if (root / L.INFO_PATH).exists():
            raise FileExistsError(f"{root} already holds a dataset ({L.INFO_PATH}); open it to append")
        for key, ft in features.items():
            if key in L.DEFAULT_FEATURES:
                raise ValueError(f"feature '{key}' is added by the layout itself")
            if {"dtype", "shape", "names"} - set(ft):
                raise ValueError(f"feature '{key}' needs dtype, shape and names")
        _write_json(root / L.INFO_PATH, L.new_info(fps, features, robot_type))
        return cls(root)

    # ------------------------------------------------------------------ loading
    def _load_info(self) -> dict:
        path = self.root / L.INFO_PATH
        if not path.exists():
            raise DatasetError(path, "-", "missing: not a dataset (no meta/info.json)")
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(path, "-", f"not valid JSON ({e})") from e
        required = {
            "codebase_version": str, "fps": int, "features": dict, "total_episodes": int,
            "total_frames": int, "total_tasks": int, "chunks_size": int, "data_path": str,
        }
        for key, typ in required.items():
            if key not in info:
                raise DatasetError(path, key, "missing")
            if not isinstance(info[key], typ):
                raise DatasetError(path, key, f"should be {typ.__name__}, is {type(info[key]).__name__}")
        if info["codebase_version"] != L.CODEBASE_VERSION:
            raise DatasetError(path, "codebase_version", f"'{info['codebase_version']}', expected '{L.CODEBASE_VERSION}'")
        for key, ft in info["features"].items():
            for field in ("dtype", "shape", "names"):
                if field not in ft:
                    raise DatasetError(path, f"features.{key}.{field}", "missing")
        return info

    def _load_tasks(self) -> list[str]:
        path = self.root / L.TASKS_PATH
        if not path.exists():
            return []
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several kinds for a damaged file
            raise DatasetError(path, "-", f"unreadable parquet ({e})") from e
        if "task_index" not in df.columns:
            raise DatasetError(path, "task_index", "missing")
        if list(df["task_index"]) != list(range(len(df))):
            raise DatasetError(path, "task_index", "not 0..n-1 in order")
        return [str(t) for t in df.index]

    def _episode_files(self) -> list[Path]:
        return sorted((self.root / L.EPISODES_DIR).glob("*/*.parquet"))

    def _load_episodes(self) -> pd.DataFrame:
        frames = []
        for path in self._episode_files():
            try:
                frames.append(pq.read_table(path).to_pandas())
            except Exception as e:
                raise DatasetError(path, "-", f"unreadable parquet ({e})") from e
        if not frames:
            return pd.DataFrame({"episode_index": pd.Series(dtype="int64")})
        df = pd.concat(frames, ignore_index=True)
        for col in ("episode_index", "length", "dataset_from_index", "dataset_to_index", "data/chunk_index", "data/file_index"):
            if col not in df.columns:
                raise DatasetError(self._episode_files()[0], col, "missing")
        return df

    # ------------------------------------------------------------------ properties
    @property
    def fps(self) -> int:
        return self.info["fps"]

    @property
    def features(self) -> dict:
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @property
    def data_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] != "video"]

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.episodes["length"].sum()) if self.num_episodes else 0

    def episode_table(self) -> pd.DataFrame:
        """meta/episodes without the per-episode stats columns."""
        return self.episodes[[c for c in self.episodes.columns if not c.startswith("stats/")]]

    # ------------------------------------------------------------------ reading
    def data_file(self, chunk: int, file: int) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=chunk, file_index=file)

    def video_file(self, key: str, chunk: int, file: int) -> Path:
        return self.root / self.info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)

    def _read_data_file(self, path: Path, columns=None) -> pa.Table:
        try:
            return pq.read_table(path, columns=columns)
        except FileNotFoundError as e:
            raise DatasetError(path, "-", "missing: an episode refers to it") from e
        except Exception as e:
            raise DatasetError(path, "-", f"unreadable parquet ({e})") from e

    def read(self, keys: Iterable[str] | None = None, episodes: Iterable[int] | None = None) -> dict[str, np.ndarray]:
        """Frame columns as arrays (N, *shape) over the given episodes (all by default), in order."""
        keys = list(keys) if keys is not None else self.data_keys
        for k in keys:
            if k not in self.data_keys:
                raise KeyError(f"'{k}' is not a data feature of {self.root}; features: {self.data_keys}")
        eps = self.episodes if episodes is None else self.episodes.set_index("episode_index").loc[list(episodes)].reset_index()
        cols = sorted(set(keys) | {"index"})
        out: dict[str, list] = {k: [] for k in keys}
        for (chunk, file), group in eps.groupby(["data/chunk_index", "data/file_index"], sort=False):
            table = self._read_data_file(self.data_file(chunk, file), cols)
            index = table.column("index").to_numpy()
            base = int(index[0]) if len(index) else 0
            for _, ep in group.iterrows():
                lo, hi = int(ep["dataset_from_index"]) - base, int(ep["dataset_to_index"]) - base
                for k in keys:
                    out[k].append(_column_to_numpy(table.column(k).slice(lo, hi - lo), self.features[k]))
        return {k: (np.concatenate(v) if v else np.zeros((0, *self.features[k]["shape"]))) for k, v in out.items()}

    def episode(self, index: int) -> dict[str, np.ndarray]:
        return self.read(episodes=[index])

    def video(self, key: str, index: int) -> np.ndarray:
        """The (T, H, W, 3) frames of episode ``index`` from video feature ``key``."""
        if key not in self.video_keys:
            raise KeyError(f"'{key}' is not a video feature of {self.root}; videos: {self.video_keys}")
        ep = self.episodes.set_index("episode_index").loc[index]
        path = self.video_file(key, ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"])
        if not path.exists():
            raise DatasetError(path, f"videos/{key}", f"missing: episode {index} refers to it")
        return read_frames(path, ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"])

    def select(self, task: str | None = None, source: str | None = None, outcome: str | None = None) -> list[int]:
        """Episode indices matching every given criterion."""
        df = self.episodes
        mask = np.ones(len(df), bool)
        for col, val in (("academy/task", task), ("academy/source", source), ("academy/outcome", outcome)):
            if val is not None:
                if col not in df.columns:
                    raise DatasetError(self.root / L.EPISODES_DIR, col, "missing: not an Academy dataset")
                mask &= (df[col] == val).to_numpy()
        return [int(i) for i in df["episode_index"][mask]]

    # ------------------------------------------------------------------ writing
    def writer(self, flush_every: int = 10, codec: str = "libx264") -> "EpisodeWriter":
        self.recover()
        return EpisodeWriter(self, flush_every, codec)

    def _all_files(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file()]

    def recover(self) -> list[str]:
        """Remove what a crash left: temporary files, and data/video files no episode refers to.

        Rewrites info.json and stats.json from the episodes. Returns what it removed.
        """
        referenced = {self.root / L.INFO_PATH, self.root / L.STATS_PATH, self.root / L.TASKS_PATH}
        referenced |= set(self._episode_files())
        for _, ep in self.episodes.iterrows():
            referenced.add(self.data_file(ep["data/chunk_index"], ep["data/file_index"]))
            for key in self.video_keys:
                referenced.add(self.video_file(key, ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"]))
        removed = []
        for path in self._all_files():
            under = path.relative_to(self.root).parts[0]
            if path.name.endswith(TMP_SUFFIX) or (under in (L.DATA_DIR, L.VIDEO_DIR) and path not in referenced):
                path.unlink()
                removed.append(str(path.relative_to(self.root)))
        if removed or self.info["total_episodes"] != self.num_episodes:
            self._write_summary()
        return removed

    def _write_summary(self, added: list[dict] | None = None) -> None:
        """info.json and stats.json from the episodes table (after a flush or a recovery).

        The per-episode stats are parsed from the table once and kept; a flush passes the rows it
        ``added`` (their stats still arrays), so writing many small flushes stays linear."""
        self.info["total_episodes"] = self.num_episodes
        self.info["total_frames"] = self.num_frames
        self.info["total_tasks"] = len(self.tasks)
        self.info["splits"] = {"train": f"0:{self.num_episodes}"} if self.num_episodes else {}
        cache = self._episode_stats
        if cache is not None and added is not None and cache[1] + len(added) == self.num_episodes:
            per_feature = cache[0]
            for row in added:
                for feature, stats in _episode_stats(row, self.features).items():
                    per_feature.setdefault(feature, []).append(stats)
        else:  # parse every episode's stats from the table
            per_feature = {}
            for _, ep in self.episodes.iterrows():
                for feature, stats in _episode_stats(ep, self.features).items():
                    per_feature.setdefault(feature, []).append(stats)
        self._episode_stats = (per_feature, self.num_episodes)
        self.stats = {f: S.aggregate(lst) for f, lst in per_feature.items()} if self.num_episodes else {}
        _write_json(self.root / L.STATS_PATH, S.to_json(self.stats))
        _write_json(self.root / L.INFO_PATH, self.info)

    # ------------------------------------------------------------------ validation
    def validate(self, videos: bool = True) -> dict:
        """Check the whole dataset against the layout; raise DatasetError naming file and field."""
        from academy.data.validate import validate

        return validate(self, videos=videos)

    def __repr__(self) -> str:
        return f"Dataset({self.root}, {self.num_episodes} episodes, {self.num_frames} frames, {len(self.tasks)} tasks)"


def _column_to_numpy(col: pa.ChunkedArray, feature: dict) -> np.ndarray:
    shape = list(feature["shape"])
    if shape == [1]:
        return col.to_numpy(zero_copy_only=False).astype(feature["dtype"]).reshape(-1, 1)
    flat = pa.concat_arrays([c.flatten() for c in col.chunks]) if col.num_chunks else pa.array([], pa.float32())
    return flat.to_numpy(zero_copy_only=False).astype(feature["dtype"]).reshape(-1, *shape)


class EpisodeWriter:
    """Adds episodes to a dataset; flushes every ``flush_every`` episodes and on close."""

    def __init__(self, dataset: Dataset, flush_every: int, codec: str):
        self.ds = dataset
        self.flush_every = max(1, flush_every)
        self.codec = codec
        self._buffer: list[dict] = []
        self._videos: dict[str, Mp4Writer] = {}
        ds = dataset
        self._file_number = 0 if not ds.num_episodes else 1 + max(
            int(c) * ds.info["chunks_size"] + int(f)
            for c, f in zip(ds.episodes["meta/episodes/chunk_index"], ds.episodes["meta/episodes/file_index"])
        )

    def _paths(self) -> tuple[int, int]:
        return L.chunk_file(self._file_number, self.ds.info["chunks_size"])

    def add_episode(self, frames: dict[str, np.ndarray], meta: EpisodeMeta, task_text: str,
                    videos: dict[str, np.ndarray] | None = None) -> int:
        """Add one episode: ``frames`` maps every data feature to (T, *shape) values, ``videos``
        every video feature to (T, H, W, 3) uint8. Returns its episode index."""
        ds = self.ds
        feats = {k: f for k, f in ds.features.items() if k not in L.DEFAULT_FEATURES and f["dtype"] != "video"}
        missing = set(feats) - set(frames)
        if missing:
            raise ValueError(f"episode lacks features {sorted(missing)}")
        extra = set(frames) - set(feats)
        if extra:
            raise ValueError(f"episode has features the dataset does not declare: {sorted(extra)}")
        lengths = {k: len(v) for k, v in frames.items()}
        T = next(iter(lengths.values()))
        if T == 0 or any(n != T for n in lengths.values()):
            raise ValueError(f"episode features must share one non-zero length, got {lengths}")
        clean = {}
        for k, ft in feats.items():
            v = np.asarray(frames[k]).reshape(T, *ft["shape"]).astype(ft["dtype"])
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                raise ValueError(f"episode feature '{k}' has NaN or infinite values")
            clean[k] = v
        videos = videos or {}
        if set(videos) != set(ds.video_keys):
            raise ValueError(f"episode videos {sorted(videos)} differ from the dataset's {ds.video_keys}")
        episode_index = ds.num_episodes + len(self._buffer)
        row = {"episode_index": episode_index, "tasks": [task_text], "length": T, **meta.columns()}
        stats = {k: S.feature_stats(v) for k, v in clean.items()}
        for key, vid in videos.items():
            vid = np.asarray(vid)
            if len(vid) != T:
                raise ValueError(f"video '{key}' has {len(vid)} frames, the episode {T}")
            if key not in self._videos:
                chunk, file = self._paths()
                path = ds.video_file(key, chunk, file)
                self._videos[key] = Mp4Writer(path.with_name(path.name + TMP_SUFFIX), ds.fps, self.codec, gop=2)
            w = self._videos[key]
            start = w.frames / ds.fps
            for f in vid:
                w.add(f)
            row[f"videos/{key}/from_timestamp"] = start
            row[f"videos/{key}/to_timestamp"] = w.frames / ds.fps
            stats[key] = S.image_stats(vid)
        for f, s in stats.items():
            for k, v in s.items():
                row[f"stats/{f}/{k}"] = v
        self._buffer.append({"row": row, "frames": clean})
        if len(self._buffer) >= self.flush_every:
            self.flush()
        return episode_index

    def flush(self) -> None:
        if not self._buffer:
            return
        ds = self.ds
        chunk, file = self._paths()
        # tasks: append new sentences (the table only grows)
        for item in self._buffer:
            for t in item["row"]["tasks"]:
                if t not in ds.tasks:
                    ds.tasks.append(t)
        task_df = pd.DataFrame({"task_index": np.arange(len(ds.tasks), dtype=np.int64)}, index=ds.tasks)
        # data file
        first = ds.num_frames
        columns: dict[str, list] = {}
        offset = first
        for item in self._buffer:
            row, fr = item["row"], item["frames"]
            T = row["length"]
            row.update({
                "data/chunk_index": chunk, "data/file_index": file,
                "dataset_from_index": offset, "dataset_to_index": offset + T,
                "meta/episodes/chunk_index": chunk, "meta/episodes/file_index": file,
            })
            for key in ds.video_keys:
                row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"] = chunk, file
            fr = dict(fr)
            fr["timestamp"] = (np.arange(T) / ds.fps).astype(np.float32)
            fr["frame_index"] = np.arange(T, dtype=np.int64)
            fr["episode_index"] = np.full(T, row["episode_index"], np.int64)
            fr["index"] = np.arange(offset, offset + T, dtype=np.int64)
            fr["task_index"] = np.full(T, ds.tasks.index(row["tasks"][0]), np.int64)
            for k, v in fr.items():
                columns.setdefault(k, []).append(v)
            offset += T
        arrays, fields = [], []
        for k, ft in ds.features.items():
            if ft["dtype"] == "video":
                continue
            v = np.concatenate(columns[k])
            typ = _arrow_type(ft["dtype"], ft["shape"])
            arr = pa.array(v.reshape(-1), type=typ) if list(ft["shape"]) == [1] else pa.FixedSizeListArray.from_arrays(
                pa.array(v.reshape(-1), type=typ.value_type), type=typ)
            arrays.append(arr)
            fields.append(pa.field(k, typ))
        table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=_hf_metadata(ds.features)))
        _atomic_write_bytes(ds.data_file(chunk, file), lambda p: pq.write_table(table, p, compression="snappy"))
        for key, w in self._videos.items():
            w.close()
            final = ds.video_file(key, chunk, file)
            os.replace(w.path, final)
        self._videos = {}
        _atomic_write_bytes(ds.root / L.TASKS_PATH, lambda p: task_df.to_parquet(p))
        rows = [item["row"] for item in self._buffer]
        ep_table = pa.Table.from_pylist([_plain(r) for r in rows])
        _atomic_write_bytes(ds.root / L.EPISODES_PATH.format(chunk_index=chunk, file_index=file),
                            lambda p: pq.write_table(ep_table, p, compression="snappy"))
        # committed: add the new rows to the in-memory view, then rewrite the summary files
        ds.episodes = pd.concat([ds.episodes, ep_table.to_pandas()], ignore_index=True) if ds.num_episodes else ep_table.to_pandas()
        ds._write_summary(added=rows)
        self._buffer = []
        self._file_number += 1

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was flushed; drop the unflushed episodes and their partial videos
            for w in self._videos.values():
                try:
                    w.close()
                except Exception:
                    pass
                w.path.unlink(missing_ok=True)


def _hf_metadata(features: dict) -> dict:
    """The schema note Hugging Face ``datasets`` writes into parquet (as LeRobot's files carry)."""
    hf = {}
    for k, ft in features.items():
        if ft["dtype"] == "video":
            continue
        value = {"dtype": ft["dtype"], "_type": "Value"}
        hf[k] = value if list(ft["shape"]) == [1] else {"feature": value, "length": int(ft["shape"][0]), "_type": "List"}
    return {b"huggingface": json.dumps({"info": {"features": hf}}).encode()}


def _episode_stats(row, features: dict) -> dict[str, dict[str, np.ndarray]]:
    """One episode row's ``stats/FEATURE/STAT`` columns as {feature: {stat: array}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for col in row.keys():
        if col.startswith("stats/"):
            _, feature, stat = col.split("/")
            video = features.get(feature, {}).get("dtype") == "video" and stat != "count"
            a = _nested(row[col])
            out.setdefault(feature, {})[stat] = a.reshape(3, 1, 1) if video else a
    return out


def _nested(v) -> np.ndarray:
    """A nested list as parquet hands it back (object arrays of arrays) as one numeric array."""
    if isinstance(v, np.ndarray) and v.dtype == object:
        return np.stack([_nested(x) for x in v])
    return np.asarray(v)


def _plain(row: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()}


def copy_episodes(sources: list[tuple[Dataset, list[int]]], out: str | Path, flush_every: int = 50) -> Dataset:
    """A new dataset at ``out`` holding the given episodes of the given datasets, renumbered.

    The datasets must share fps and features. Used by merge and filter.
    """
    first = sources[0][0]
    for ds, _ in sources[1:]:
        if ds.fps != first.fps:
            raise DatasetError(ds.root / L.INFO_PATH, "fps", f"{ds.fps} differs from {first.fps} of {first.root}")
        if ds.features != first.features:
            diff = sorted(set(ds.features) ^ set(first.features)) or [
                k for k in ds.features if ds.features[k] != first.features.get(k)]
            raise DatasetError(ds.root / L.INFO_PATH, "features", f"differ from {first.root} in {diff}")
    feats = {k: v for k, v in first.features.items() if k not in L.DEFAULT_FEATURES}
    target = Dataset.create(out, first.fps, feats, first.info.get("robot_type") or "academy_ah1")
    with target.writer(flush_every) as w:
        for ds, indices in sources:
            table = ds.episodes.set_index("episode_index")
            for i in indices:
                ep = table.loc[i]
                meta = EpisodeMeta(**{k.split("/", 1)[1]: _scalar(ep[k]) for k in ep.index  # a column only newer
                                      if k.startswith("academy/") and not _missing(ep[k])})  # episodes have: default
                frames = {k: v for k, v in ds.episode(i).items() if k not in L.DEFAULT_FEATURES}
                videos = {k: ds.video(k, i) for k in ds.video_keys}
                w.add_episode(frames, meta, str(list(ep["tasks"])[0]), videos)
    return Dataset(out)


def _scalar(v):
    return v.item() if hasattr(v, "item") else v


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def merge(paths: list[str | Path], out: str | Path) -> Dataset:
    datasets = [Dataset(p) for p in paths]
    return copy_episodes([(d, list(d.episodes["episode_index"])) for d in datasets], out)


def filter_dataset(path: str | Path, out: str | Path, **criteria) -> Dataset:
    ds = Dataset(path)
    chosen = ds.select(**criteria)
    if not chosen:
        raise ValueError(f"no episode of {path} matches {criteria}")
    return copy_episodes([(ds, chosen)], out)

