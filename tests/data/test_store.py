import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from academy.data import Dataset, DatasetError, EpisodeMeta, filter_dataset, merge
from academy.data import layout as L

from dshelp import FEATURES, random_episode


def test_round_trip_preserves_every_value(small):
    ds, written = small
    assert ds.num_episodes == 5 and ds.num_frames == sum(8 + e for e in range(5))
    for i, (frames, _, meta) in enumerate(written):
        back = ds.episode(i)
        for k, v in frames.items():
            np.testing.assert_array_equal(back[k].reshape(v.shape), v)
        np.testing.assert_array_equal(back["frame_index"][:, 0], np.arange(len(frames["action"])))
        assert np.all(back["episode_index"] == i)
        row = ds.episodes.iloc[i]
        assert row["academy/task"] == meta.task and row["academy/outcome"] == meta.outcome
        assert row["academy/seed"] == meta.seed and list(row["tasks"]) == [f"do {meta.task}"]


def test_video_round_trip_and_timestamps(small_video):
    ds, written = small_video
    ds.validate()
    key = "observation.images.overview"
    for i, (_, videos, _) in enumerate(written):
        back = ds.video(key, i)
        assert back.shape == videos[key].shape
        assert np.abs(back.astype(int) - videos[key].astype(int)).mean() < 6  # lossy H.264
    eps = ds.episodes
    # episodes of one file follow each other in time
    same_file = eps[eps[f"videos/{key}/file_index"] == 0]
    assert same_file[f"videos/{key}/from_timestamp"].iloc[1] == pytest.approx(same_file[f"videos/{key}/to_timestamp"].iloc[0])


def test_stats_are_right(small):
    ds, written = small
    allv = {k: np.concatenate([w[0][k] for w in written]).astype(np.float64) for k in FEATURES}
    for k, v in allv.items():
        v = v.reshape(len(v), -1)
        s = ds.stats[k]
        np.testing.assert_allclose(s["mean"], v.mean(0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(s["std"], v.std(0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(s["min"], v.min(0))
        np.testing.assert_allclose(s["max"], v.max(0))
        assert s["count"].tolist() == [len(v)]
    # per-episode quantiles are exact; the dataset's are their count-weighted mean (LeRobot's rule)
    ep0 = written[0][0]["action"].astype(np.float64)
    col = np.stack(ds.episodes["stats/action/q90"].iloc[0])
    np.testing.assert_allclose(col, np.quantile(ep0, 0.9, axis=0))
    counts = ds.episodes["length"].to_numpy()
    qs = np.stack([np.stack(q) for q in ds.episodes["stats/action/q10"]])
    np.testing.assert_allclose(ds.stats["action"]["q10"], (qs * counts[:, None]).sum(0) / counts.sum())
    on_disk = json.loads((ds.root / L.STATS_PATH).read_text())
    assert set(on_disk["action"]) == set(L.STAT_KEYS)


def test_layout_matches_lerobot_v30(small_video):
    ds, _ = small_video
    info = json.loads((ds.root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    for key in ("fps", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
                "data_files_size_in_mb", "video_files_size_in_mb", "splits", "features"):
        assert key in info, key
    assert info["splits"] == {"train": "0:3"} and info["total_frames"] == ds.num_frames
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert info["features"][key]["shape"] == [1]
    tasks = pd.read_parquet(ds.root / "meta/tasks.parquet")
    assert list(tasks.columns) == ["task_index"] and list(tasks.index) == ["do handover", "do sort_cells"]
    data = pq.read_table(ds.root / "data/chunk-000/file-000.parquet")
    assert set(data.column_names) == set(FEATURES) | {"timestamp", "frame_index", "episode_index", "index", "task_index"}
    assert str(data.schema.field("observation.state").type) == "fixed_size_list<element: float>[4]"
    assert str(data.schema.field("timestamp").type) == "float"
    hf = json.loads(data.schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.state"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4, "_type": "List"}
    eps = pq.read_table(ds.root / "meta/episodes/chunk-000/file-000.parquet")
    key = "observation.images.overview"
    for col in ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                "dataset_to_index", f"videos/{key}/chunk_index", f"videos/{key}/file_index",
                f"videos/{key}/from_timestamp", f"videos/{key}/to_timestamp", "meta/episodes/chunk_index",
                "meta/episodes/file_index", "stats/action/mean", f"stats/{key}/mean"):
        assert col in eps.column_names, col
    assert np.asarray(ds.stats[key]["mean"]).shape == (3, 1, 1)
    assert (ds.root / "videos" / key / "chunk-000/file-000.mp4").exists()


def test_append_adds_new_files_and_keeps_indices(small, tmp_path):
    ds, _ = small
    rng = np.random.default_rng(9)
    with ds.writer() as w:
        frames, _ = random_episode(rng, 6)
        assert w.add_episode(frames, EpisodeMeta(task="handover"), "do handover") == 5
    ds = Dataset(ds.root)
    ds.validate()
    assert ds.num_episodes == 6 and ds.episodes["dataset_from_index"].iloc[5] == ds.num_frames - 6
    assert ds.episodes["data/file_index"].iloc[5] == 3  # flushes 0,1,2 before, a new file now


def test_filter_and_merge(small, tmp_path):
    ds, _ = small
    assert ds.select(task="handover") == [0, 2, 4]
    assert ds.select(outcome="failure") == [3, 4]
    assert ds.select(task="handover", outcome="success") == [0, 2]
    f = filter_dataset(ds.root, tmp_path / "f", task="handover", outcome="success")
    f.validate()
    assert f.num_episodes == 2 and list(f.episodes["academy/seed"]) == [0, 2]
    np.testing.assert_array_equal(f.episode(1)["action"], ds.episode(2)["action"])
    m = merge([ds.root, f.root], tmp_path / "m")
    m.validate()
    assert m.num_episodes == 7 and m.num_frames == ds.num_frames + f.num_frames
    with pytest.raises(ValueError, match="no episode"):
        filter_dataset(ds.root, tmp_path / "none", task="unknown")


def test_merge_refuses_mismatched_features(small, tmp_path):
    ds, _ = small
    other = Dataset.create(tmp_path / "other", 20, {"action": FEATURES["action"]})
    with pytest.raises(DatasetError, match="features"):
        merge([ds.root, other.root], tmp_path / "m")


def test_bad_episodes_are_refused(small):
    ds, _ = small
    rng = np.random.default_rng(1)
    frames, _ = random_episode(rng, 5)
    with ds.writer() as w:
        with pytest.raises(ValueError, match="lacks features"):
            w.add_episode({k: v for k, v in frames.items() if k != "action"}, EpisodeMeta(task="t"), "t")
        bad = dict(frames, action=np.full((5, 2), np.nan, np.float32))
        with pytest.raises(ValueError, match="NaN"):
            w.add_episode(bad, EpisodeMeta(task="t"), "t")
        with pytest.raises(ValueError, match="one non-zero length"):
            w.add_episode(dict(frames, action=frames["action"][:3]), EpisodeMeta(task="t"), "t")
    with pytest.raises(ValueError, match="source"):
        EpisodeMeta(task="t", source="youtube")
