"""Corrupt or inconsistent datasets give errors naming the file and field; crashes lose nothing committed."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from academy.data import Dataset, DatasetError, EpisodeMeta

from dshelp import FEATURES, random_episode


def test_missing_dataset(tmp_path):
    with pytest.raises(DatasetError, match="meta/info.json"):
        Dataset(tmp_path)


def test_info_json_problems_name_the_field(small):
    ds, _ = small
    path = ds.root / "meta/info.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(DatasetError, match="info.json: codebase_version"):
        Dataset(ds.root)
    path.write_text(json.dumps({k: v for k, v in info.items() if k != "fps"}))
    with pytest.raises(DatasetError, match="info.json: fps: missing"):
        Dataset(ds.root)
    path.write_text("{ not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        Dataset(ds.root)


def test_truncated_data_file_names_the_file(small):
    ds, _ = small
    path = ds.root / "data/chunk-000/file-001.parquet"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="file-001.parquet: -: unreadable parquet"):
        Dataset(ds.root).validate()


def _rewrite_column(path, name, change):
    table = pq.read_table(path)
    values = change(table.column(name).to_numpy().copy())
    pq.write_table(table.set_column(table.column_names.index(name), name, pa.array(values)), path)


def test_inconsistent_indices_name_the_field(small):
    ds, _ = small
    _rewrite_column(ds.root / "meta/episodes/chunk-000/file-001.parquet", "dataset_from_index", lambda v: v + 1)
    with pytest.raises(DatasetError, match="dataset_from_index"):
        Dataset(ds.root).validate()


def test_nan_in_data_names_the_column(small):
    ds, _ = small
    _rewrite_column(ds.root / "data/chunk-000/file-000.parquet", "next.reward", lambda v: np.where(np.arange(len(v)) == 3, np.nan, v))
    with pytest.raises(DatasetError, match="file-000.parquet: next.reward: NaN"):
        Dataset(ds.root).validate()


def test_corrupt_video_names_the_file(small_video):
    ds, _ = small_video
    path = ds.root / "videos/observation.images.overview/chunk-000/file-000.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(DatasetError, match="file-000.mp4"):
        Dataset(ds.root).validate()


def test_totals_disagreeing_with_episodes(small):
    ds, _ = small
    path = ds.root / "meta/info.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "total_frames": 3}))
    with pytest.raises(DatasetError, match="total_frames"):
        Dataset(ds.root).validate()


def test_exception_mid_write_keeps_flushed_episodes(tmp_path):
    ds = Dataset.create(tmp_path / "ds", 20, FEATURES)
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError):
        with ds.writer(flush_every=2) as w:
            for e in range(5):
                frames, _ = random_episode(rng, 6)
                w.add_episode(frames, EpisodeMeta(task="t"), "t")
            raise RuntimeError("power cut")
    ds = Dataset(ds.root)
    ds.validate()
    assert ds.num_episodes == 4  # two flushes of two; the fifth episode was never committed
    assert not [p for p in ds.root.rglob("*.partial")]


def test_orphan_files_from_a_crash_between_renames_are_dropped(small):
    ds, _ = small
    # a crash after the data file was renamed into place but before its episodes file
    orphan = ds.root / "data/chunk-000/file-007.parquet"
    orphan.write_bytes((ds.root / "data/chunk-000/file-000.parquet").read_bytes())
    (ds.root / "meta/episodes/chunk-000/file-007.parquet.partial").write_bytes(b"half")
    ds = Dataset(ds.root)
    assert ds.num_episodes == 5  # readers never see the orphan
    removed = ds.recover()
    assert sorted(removed) == ["data/chunk-000/file-007.parquet", "meta/episodes/chunk-000/file-007.parquet.partial"]
    ds.validate()


def test_killed_writer_leaves_a_readable_dataset(tmp_path):
    root = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from dshelp import FEATURES, random_episode
        from academy.data import Dataset, EpisodeMeta
        ds = Dataset.create({str(root)!r}, 20, FEATURES)
        rng = np.random.default_rng(0)
        with ds.writer(flush_every=1) as w:
            for e in range(100000):
                frames, _ = random_episode(rng, 50)
                w.add_episode(frames, EpisodeMeta(task="t"), "t")
                print(e, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(20):  # let it commit some episodes, then kill it without warning
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ds = Dataset(root)
    assert ds.num_episodes >= 19
    ds.recover()
    ds.validate()
    with ds.writer() as w:  # and it takes new episodes
        frames, _ = random_episode(np.random.default_rng(1), 5)
        w.add_episode(frames, EpisodeMeta(task="t"), "t")
    Dataset(root).validate()
