"""Marker detection (sub-pixel, one blob one marker) and robust triangulation, on synthetic data."""

import colorsys

import cv2
import numpy as np
import pytest

from academy.watch.detect import MarkerDetector
from academy.watch.rig import Camera, Rig
from academy.watch.triangulate import reject_jumps, reject_strays, smooth, triangulate

HUES = {"a": 160, "b": 200, "c": 295}


def disc(img, u, v, r, hue):
    rgb = np.array(colorsys.hsv_to_rgb(hue / 360, 1.0, 0.9)) * 255
    shift = 4  # sub-pixel centre with cv2's fixed-point drawing
    cv2.circle(img, (int(round(u * 2**shift)), int(round(v * 2**shift))), int(r * 2**shift), rgb.tolist(), -1,
               cv2.LINE_AA, shift)


def test_markers_found_at_subpixel_centres_and_streaks_rejected():
    img = np.full((120, 160, 3), (150, 120, 90), np.uint8)  # a bench-coloured background
    truth = {"a": (30.3, 40.7), "b": (80.6, 50.2), "c": (120.25, 90.9)}
    for k, (u, v) in truth.items():
        disc(img, u, v, 4, HUES[k])
    streak = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(160 / 360, 1.0, 0.9))
    cv2.line(img, (10, 100), (70, 104), streak, 1)  # a thin edge of marker a's hue
    det = MarkerDetector(HUES)(img)
    for k, (u, v) in truth.items():
        assert len(det.uv[k]) == 1, (k, det.uv[k])
        assert np.linalg.norm(det.uv[k][0] - (u, v)) < 0.35
    with pytest.raises(ValueError, match="uint8"):
        MarkerDetector(HUES)(img.astype(float))


def test_half_hidden_marker_is_flagged_partial():
    img = np.zeros((80, 80, 3), np.uint8)
    disc(img, 40, 40, 6, HUES["b"])
    img[:, 40:] = 0  # the right half is behind something
    det = MarkerDetector(HUES)(img)
    assert det.partial["b"].tolist() == [True]


def _rig(n=4):
    cams = []
    for i in range(n):
        yaw = np.deg2rad(-30 + 20 * i)
        # cameras 0.6 m from the origin looking at it
        c = np.array([-0.6 * np.cos(yaw), -0.6 * np.sin(yaw), 0.3])
        z = -c / np.linalg.norm(c)
        x = np.cross(z, [0, 0, 1.0]); x /= np.linalg.norm(x)
        y = np.cross(z, x)
        K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
        cams.append(Camera(f"c{i}", 320, 240, K, np.zeros(5), np.stack([x, y, z], 1), c))
    return Rig(cams, np.zeros((1, 3)), np.eye(3)[None], 30.0)


def test_triangulation_rejects_outliers_and_needs_two_views():
    rig = _rig()
    rng = np.random.default_rng(0)
    P = [rig.projection(c, 0) for c in rig.cameras]
    for trial in range(20):
        noise = 0.0 if trial < 5 else 0.3  # px
        X = rng.uniform(-0.1, 0.1, 3)
        cands, weights = [], []
        for c in rig.cameras:
            uv, _ = rig.project(c, 0, X[None])
            uv = uv + rng.normal(0, noise, uv.shape) if noise else uv
            wrong = rng.uniform(0, 240, (1, 2))  # a false blob of the same colour
            cands.append(np.vstack([wrong, uv]))
            weights.append(np.array([1.0, 1.0]))
        # one camera sees only the false blob
        cands[0], weights[0] = cands[0][:1], weights[0][:1]
        Y, views, rms = triangulate(P, cands, weights)
        assert views == 3 and rms < 1.5
        assert np.linalg.norm(Y - X) < (1e-6 if noise == 0 else 0.004)  # 0.3 px is ~1 mm at 0.6 m, more in depth
    one = [np.zeros((0, 2))] * 3 + [np.array([[100.0, 100.0]])]
    Y, views, _ = triangulate(P, one, [np.ones(len(c)) for c in one])
    assert views == 0 and np.all(np.isnan(Y))


def test_smoothing_fills_short_gaps_keeps_long_ones_and_drops_jumps():
    t = np.linspace(0, 1, 60)
    track = np.stack([t, 0 * t, 0.1 * t**2], 1)
    noisy = track + np.random.default_rng(0).normal(0, 0.001, track.shape)
    noisy[10] += [0.3, 0, 0]  # a mistaken triangulation
    noisy[20:25] = np.nan  # short gap
    noisy[40:55] = np.nan  # long gap
    assert np.all(np.isnan(reject_jumps(noisy)[10]))
    out = smooth(noisy)
    assert np.all(np.isfinite(out[20:25])) and np.all(np.isnan(out[41:54]))
    ok = np.isfinite(out[:, 0])
    assert np.abs(out[ok] - track[ok]).max() < 0.004


def test_a_stray_amid_a_gap_is_dropped_not_smoothed_into_its_neighbours():
    # where the hands meet, a marker placed from the other glove lands metres off between two
    # short gaps: no pair of neighbours judges it, and smoothed it dragged the hand ~2 m for frames
    t = np.linspace(0, 1, 60)
    track = np.stack([0.3 + 0.5 * t, 0 * t, 1.0 + 0 * t], 1)  # a hand moving at 0.5 m/s
    noisy = track.copy()
    noisy[28:31] = np.nan
    noisy[31] = [1.26, 0.15, -1.83]
    noisy[32:36] = np.nan
    assert np.all(np.isfinite(reject_jumps(noisy)[31]))  # the pairwise check cannot see it
    out = smooth(noisy)
    assert np.all(np.isfinite(out[:, 0])) and np.abs(out - track).max() < 0.002
    pair = track.copy()  # two strays beside a good point: the strays go, the good point stays
    pair[39:44], pair[47:52] = np.nan, np.nan
    pair[44], pair[46] = [1.2, 0.1, -1.0], [1.1, 0.2, -0.9]
    kept = reject_strays(pair)
    assert np.all(np.isnan(kept[[44, 46]])) and np.all(np.isfinite(kept[45]))
    fast = np.stack([0.2 + 2.0 * t, 0 * t, 1.0 + 0 * t], 1)  # 2 m/s, a gap on one side: kept
    fast[20:26] = np.nan
    assert np.all(np.isfinite(reject_strays(fast)[np.r_[0:20, 26:60]]))
