"""Feature statistics in LeRobot's form: min, max, mean, std, count, q01..q99.

Per episode they are exact (numpy over the episode's frames). Over the dataset they are
aggregated from the episodes as LeRobot does: min/max/mean/std/count exact (parallel variance),
quantiles the count-weighted mean of the episodes' quantiles.
Vector features give arrays of the feature's shape; video features per-channel values in [0, 1]
of shape (3, 1, 1), from every 4th frame subsampled to at most ~150 px.
"""

from __future__ import annotations

import numpy as np

from academy.data.layout import QUANTILES


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of (T, ...) values over axis 0."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    out = {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)]),
    }
    qs = np.quantile(x, list(QUANTILES.values()), axis=0)
    out.update({k: qs[i] for i, k in enumerate(QUANTILES)})
    return out


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of (T, H, W, 3) uint8 frames, in [0, 1], shaped (3, 1, 1)."""
    frames = np.asarray(frames)
    step = max(1, max(frames.shape[1:3]) // 150)
    sample = frames[::4, ::step, ::step].reshape(-1, 3) / 255.0
    s = {k: v.reshape(3, 1, 1) for k, v in feature_stats(sample).items() if k != "count"}
    return s | {"count": np.array([len(frames[::4])])}


def aggregate(stats_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine one feature's stats over several episodes (LeRobot's aggregate_feature_stats)."""
    means = np.stack([np.asarray(s["mean"], float) for s in stats_list])
    counts = np.array([float(np.asarray(s["count"]).reshape(-1)[0]) for s in stats_list])
    w = counts.reshape(-1, *([1] * (means.ndim - 1))) / counts.sum()
    mean = (means * w).sum(0)
    var = ((np.stack([np.asarray(s["std"], float) ** 2 for s in stats_list]) + (means - mean) ** 2) * w).sum(0)
    out = {
        "min": np.min(np.stack([s["min"] for s in stats_list]), 0),
        "max": np.max(np.stack([s["max"] for s in stats_list]), 0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(counts.sum())]),
    }
    for q in QUANTILES:
        out[q] = (np.stack([np.asarray(s[q], float) for s in stats_list]) * w).sum(0)
    return out


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def from_json(d: dict) -> dict[str, dict[str, np.ndarray]]:
    return {f: {k: np.asarray(v) for k, v in s.items()} for f, s in d.items()}
