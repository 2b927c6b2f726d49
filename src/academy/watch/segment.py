"""Cut a continuous recording into task episodes: stretches where a hand moves, idle dropped."""

from __future__ import annotations

import numpy as np


def true_spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) spans where ``mask`` is true."""
    edges = np.flatnonzero(np.diff(np.r_[0, np.asarray(mask).astype(int), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def active_spans(points: np.ndarray, fps: float, speed: float = 0.05, min_gap_s: float = 1.7,
                 min_len_s: float = 1.5, pad_s: float = 0.3, hands: int = 2) -> list[tuple[int, int]]:
    """[start, stop) frame spans in which a hand moves faster than ``speed`` (m/s).

    ``points`` (T, K, 3) holds ``hands`` equal groups of keypoints, one group per hand; a
    hand's speed is its keypoints' mean's, over 0.3 s, which keeps triangulation jitter (a few
    mm a frame) from looking like motion.

    Pauses shorter than ``min_gap_s`` stay inside an episode (a person hesitates, or rests a
    hand between cells); stretches shorter than ``min_len_s`` are dropped (a fidget, a scratch).
    Each span is padded by ``pad_s`` on both sides, within the recording.
    """
    T, K = points.shape[:2]
    if T < 2:
        return []
    centres = np.nanmean(points.reshape(T, hands, K // hands, 3), axis=2)  # (T, hands, 3)
    k = max(1, int(round(0.3 * fps)))
    lag = np.linalg.norm(centres[k:] - centres[:-k], axis=-1) * fps / k  # (T-k, hands): speed over 0.3 s
    v = np.where(np.isfinite(lag), lag, 0.0).max(axis=1)
    v = np.r_[np.full(k // 2, v[0] if len(v) else 0.0), v, np.full(k - k // 2 - 1, v[-1] if len(v) else 0.0)]
    moving = np.r_[v > speed, False]
    merged: list[list[int]] = []
    for a, b in true_spans(moving):
        if merged and a - merged[-1][1] < min_gap_s * fps:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    pad = int(round(pad_s * fps))
    return [(max(0, a - pad), min(T, b + pad)) for a, b in merged if b - a >= min_len_s * fps]


def episode_spans(points: np.ndarray, fps: float, expected: int, floor_s: float = 1.0) -> list[tuple[int, int]]:
    """``active_spans`` for a recording whose scene description lists ``expected`` episodes.

    A person who rests only briefly between two episodes (the recorder's idle is 1.5-3 s, and
    triangulation noise can shave a few frames off a rest) would merge them at the default 1.7 s
    gap. When the default does not find ``expected`` spans, the shortest gap that still cuts is
    lowered in 0.1 s steps, no lower than ``floor_s`` (a person's hesitation inside an episode
    stays under about 1.1 s), and the first gap that gives exactly ``expected`` spans is used:
    the longest rests are cut first. Otherwise the default's spans are returned, and the caller
    says the counts differ.
    """
    spans = active_spans(points, fps)
    if len(spans) >= expected:
        return spans
    for tenths in range(16, int(round(floor_s * 10)) - 1, -1):
        lower = active_spans(points, fps, min_gap_s=tenths / 10)
        if len(lower) == expected:
            return lower
        if len(lower) > expected:
            break
    return spans
