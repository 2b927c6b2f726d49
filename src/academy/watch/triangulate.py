"""3D keypoints from the rig's views: robust DLT triangulation, then smoothing over time.

Per keypoint (or colour) and frame, every camera offers zero or more 2D candidates (from a
detector). A hypothesis is the DLT point of one candidate pair from two cameras; it is scored by how many
cameras then agree (a candidate within ``threshold_px`` of its reprojection), weighted by the
candidates' confidence. The best hypothesis is refined over its agreeing views: weighted DLT, then a few Gauss-Newton
steps on the reprojection error.
A point needs at least two views; false blobs (another object of a similar colour, a partial
marker) fall out as outliers. Over time, short gaps are filled and the path smoothed with a
Savitzky-Golay filter (scipy), which keeps the shape of minimum-jerk motion.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from academy.watch.segment import true_spans


def dlt(P: np.ndarray, uv: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted DLT: projection matrices (n, 3, 4), pixels (n, 2) -> world point (3,)."""
    w = np.ones(len(uv)) if w is None else np.asarray(w, float)
    A = np.concatenate([uv[:, :1] * P[:, 2] - P[:, 0], uv[:, 1:2] * P[:, 2] - P[:, 1]]) * np.r_[w, w][:, None]
    A /= np.linalg.norm(A, axis=1, keepdims=True).clip(1e-12)
    X = np.linalg.svd(A)[2][-1]
    return X[:3] / X[3] if abs(X[3]) > 1e-12 else np.full(3, np.nan)


def refine(P: np.ndarray, uv: np.ndarray, w: np.ndarray, X: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Gauss-Newton on the weighted reprojection error, from the DLT point (which minimises an
    algebraic error, not the pixel one)."""
    for _ in range(iterations):
        h = P @ np.r_[X, 1.0]  # (n, 3)
        if np.any(h[:, 2] <= 1e-9):
            break
        r = (h[:, :2] / h[:, 2:3] - uv).reshape(-1)
        J = ((P[:, :2, :3] * h[:, 2, None, None] - h[:, :2, None] * P[:, 2, None, :3]) / h[:, 2, None, None] ** 2).reshape(-1, 3)
        ww = np.repeat(w, 2)
        step = np.linalg.lstsq(J * ww[:, None], -r * ww, rcond=None)[0]
        X = X + step
        if np.linalg.norm(step) < 1e-7:
            break
    return X


def reproject(P: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 2) and depths (n,) of point X in n cameras."""
    h = P @ np.r_[X, 1.0]
    return h[:, :2] / h[:, 2:3], h[:, 2]


def triangulate(P: list[np.ndarray], cands: list[np.ndarray], weights: list[np.ndarray],
                threshold_px: float = 4.0) -> tuple[np.ndarray, int, float]:
    """Robust point from per-camera candidates: (X (3,) or NaNs, number of agreeing views, rms px)."""
    found = triangulate_all(P, cands, weights, threshold_px, max_points=1)
    return found[0] if found else (np.full(3, np.nan), 0, np.inf)


def triangulate_all(P: list[np.ndarray], cands: list[np.ndarray], weights: list[np.ndarray],
                    threshold_px: float = 4.0, max_points: int = 2) -> list[tuple[np.ndarray, int, float]]:
    """Up to ``max_points`` distinct points (best first) from candidates of one colour: after
    each, the candidates it explains are set aside and the search runs again (two gloves carry
    the same colours)."""
    Pa = np.stack(P)
    used: set[tuple[int, int]] = set()
    out = []
    for _ in range(max_points):
        best = _best_hypothesis(Pa, cands, weights, used, threshold_px)
        if best is None:
            break
        idx = [k for k, _ in best]
        uv = np.stack([cands[k][m] for k, m in best])
        w = np.array([weights[k][m] for k, m in best])
        X = refine(Pa[idx], uv, w, dlt(Pa[idx], uv, w))
        proj, _ = reproject(Pa[idx], X)
        out.append((X, len(idx), float(np.sqrt(np.mean(np.sum((proj - uv) ** 2, axis=1))))))
        used.update(best)
    return out


def _best_hypothesis(Pa, cands, weights, used, threshold_px) -> list[tuple[int, int]] | None:
    """The agreeing (camera, candidate) views of the best-supported pair hypothesis, or None."""
    avail = [[m for m in range(len(c)) if (k, m) not in used] for k, c in enumerate(cands)]
    cams = [k for k, a in enumerate(avail) if a]
    best_score, best_views = 0.0, None
    for ai, i in enumerate(cams):
        for j in cams[ai + 1 :]:
            for a in avail[i]:
                for b in avail[j]:
                    X = dlt(Pa[[i, j]], np.stack([cands[i][a], cands[j][b]]))
                    if not np.all(np.isfinite(X)):
                        continue
                    proj, depth = reproject(Pa, X)
                    if depth[i] <= 0 or depth[j] <= 0:
                        continue
                    score, views = 0.0, []
                    for k in cams:
                        if depth[k] <= 0:
                            continue
                        ms = avail[k]
                        err = np.linalg.norm(cands[k][ms] - proj[k], axis=1)
                        n = int(np.argmin(err))
                        if err[n] < threshold_px:
                            score += weights[k][ms[n]] * (1.0 - 0.5 * err[n] / threshold_px)
                            views.append((k, ms[n]))
                    if len(views) >= 2 and score > best_score:
                        best_score, best_views = score, views
    return best_views


def reject_jumps(track: np.ndarray, reach: int = 3, max_dev: float = 0.03) -> np.ndarray:
    """A point farther than ``max_dev`` (m) from where its neighbours put it becomes NaN.

    Where its neighbours put it: the midpoints of the pairs (t-k, t+k), k = 1..``reach``, both
    valid; their median deviation is robust to one bad neighbour and follows steady motion.
    """
    src = np.asarray(track, float)
    out = src.copy()
    valid = np.all(np.isfinite(src), axis=1)
    T = len(src)
    for t in np.flatnonzero(valid):
        devs = [np.linalg.norm(src[t] - (src[t - k] + src[t + k]) / 2)
                for k in range(1, reach + 1) if t - k >= 0 and t + k < T and valid[t - k] and valid[t + k]]
        if devs and np.median(devs) > max_dev:
            out[t] = np.nan
    return out


def reject_strays(track: np.ndarray, reach: int = 6, max_dev: float = 0.3) -> np.ndarray:
    """A point farther than ``max_dev`` (m) from the median of the valid points within ``reach``
    frames of it (at least two) becomes NaN: a stray amid a gap, which ``reject_jumps`` cannot
    judge (it needs both neighbours of a pair), metres off where a marker of the other glove was
    matched, or placed from one; smoothed, one such point drags its hand along for frames.
    The worst goes first and its neighbours are judged again without it, so a good point beside
    two strays is kept. A hand moving fast (2 m/s) strays from that median by well under ``max_dev``."""
    out = np.asarray(track, float).copy()
    valid = np.all(np.isfinite(out), axis=1)

    def deviation(t: int) -> float:
        near = [u for u in range(max(0, t - reach), min(len(out), t + reach + 1)) if u != t and valid[u]]
        return float(np.linalg.norm(out[t] - np.median(out[near], axis=0))) if len(near) >= 2 else 0.0

    dev = np.zeros(len(out))
    for t in np.flatnonzero(valid):
        dev[t] = deviation(t)
    while dev.max() > max_dev:
        t = int(np.argmax(dev))
        out[t], valid[t], dev[t] = np.nan, False, 0.0
        for u in range(max(0, t - reach), min(len(out), t + reach + 1)):
            if valid[u]:
                dev[u] = deviation(u)
    return out


def smooth(track: np.ndarray, max_gap: int = 10, window: int = 9, order: int = 2) -> np.ndarray:
    """(T, 3) path with NaN gaps -> jumps and strays rejected, gaps up to ``max_gap`` frames
    filled linearly, then smoothed. Longer gaps stay NaN; each valid stretch is filtered on its own.
    """
    out = reject_strays(reject_jumps(track))
    T = len(out)
    valid = np.all(np.isfinite(out), axis=1)
    if valid.sum() < 2:
        return out
    t = np.arange(T)
    idx = np.flatnonzero(valid)
    for c in range(3):
        filled = np.interp(t, idx, out[idx, c])
        out[:, c] = np.where(valid, out[:, c], filled)
    # re-open gaps that were too long (and the ends before the first / after the last point)
    gap = np.zeros(T, bool)
    gap[: idx[0]] = True
    gap[idx[-1] + 1 :] = True
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a - 1 > max_gap:
            gap[a + 1 : b] = True
    out[gap] = np.nan
    ok = ~gap
    for a, b in true_spans(ok):
        if b - a >= window:
            out[a:b] = savgol_filter(out[a:b], window, order, axis=0)
    return out
