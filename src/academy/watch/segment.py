"""Cut a continuous recording into task episodes: stretches where a hand moves, idle dropped."""

from __future__ import annotations

import numpy as np


def active_spans(points: np.ndarray, fps: float, speed: float = 0.04, min_gap_s: float = 1.7,
                 min_len_s: float = 1.5, pad_s: float = 0.3) -> list[tuple[int, int]]:
    """[start, stop) frame spans in which some keypoint moves faster than ``speed`` (m/s).

    Pauses shorter than ``min_gap_s`` stay inside an episode (a person hesitates, or rests a
    hand between cells); stretches shorter than ``min_len_s`` are dropped (a fidget, a scratch).
    Each span is padded by ``pad_s`` on both sides, within the recording.
    """
    T = len(points)
    if T < 2:
        return []
    v = np.linalg.norm(np.diff(points, axis=0), axis=-1) * fps  # (T-1, K)
    v = np.where(np.isfinite(v), v, 0.0).max(axis=1)
    k = max(1, int(round(0.2 * fps)))
    v = np.convolve(v, np.ones(k) / k, mode="same")  # 0.2 s moving average
    moving = np.r_[v > speed, False]
    edges = np.flatnonzero(np.diff(np.r_[0, moving.astype(int), 0]))
    spans = [[a, b] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < min_gap_s * fps:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    pad = int(round(pad_s * fps))
    return [(max(0, a - pad), min(T, b + pad)) for a, b in merged if b - a >= min_len_s * fps]
