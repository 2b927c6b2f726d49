"""Marker-glove keypoints per camera frame: colour segmentation with OpenCV.

Each glove marker has a hue of its own (the rig's ``markers`` list: name and hue). A pixel
belongs to the marker of the nearest hue when it is saturated and bright enough and within a
tolerance of that hue; connected blobs of such pixels are candidates, unless most of a blob
sits at the edge of the tolerance (the fringe of a neighbouring hue's marker). A candidate's position is its
sub-pixel centroid, weighted by how saturated and how close in hue each pixel is. Occlusion:
a blob much smaller or less round than a whole marker seen at that size is flagged partial
(its centroid is biased toward the visible part) and triangulation weighs it down. Up to
``max_candidates`` blobs per marker are kept: which one is the marker is settled across
cameras by triangulation, not here.

``LandmarkDetector`` is the interface a learned landmarker implements (for instance MediaPipe's
HandLandmarker with a user's model file): frame -> candidates per keypoint name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


@dataclass
class Candidates:
    """Per keypoint: (n, 2) pixel positions, (n,) weights in (0, 1], (n,) partial flags."""

    uv: dict[str, np.ndarray]
    weight: dict[str, np.ndarray]
    partial: dict[str, np.ndarray]


class LandmarkDetector(Protocol):
    names: tuple[str, ...]

    def __call__(self, rgb: np.ndarray) -> Candidates: ...


class MarkerDetector:
    """Finds the glove's coloured markers in an RGB frame."""

    def __init__(self, hues: dict[str, float], hue_tol: float = 8.0, min_sat: int = 140, min_val: int = 70,
                 min_area: int = 3, max_area: int = 900, max_candidates: int = 3):
        self.names = tuple(hues)
        self.hues = {k: float(v) / 2.0 for k, v in hues.items()}  # OpenCV hue: degrees / 2
        self.tol = hue_tol / 2.0
        self.min_sat, self.min_val = min_sat, min_val
        self.min_area, self.max_area, self.max_candidates = min_area, max_area, max_candidates

    def __call__(self, rgb: np.ndarray) -> Candidates:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        h = hsv[..., 0].astype(np.float32)
        s = hsv[..., 1]
        vivid = (s >= self.min_sat) & (hsv[..., 2] >= self.min_val)
        # every vivid pixel goes to the marker of the nearest hue, so one blob feeds one marker
        centres = np.array(list(self.hues.values()), np.float32)
        dist = np.abs(h[..., None] - centres)
        dist = np.minimum(dist, 180.0 - dist)
        nearest = np.argmin(dist, axis=-1)
        d = np.take_along_axis(dist, nearest[..., None], -1)[..., 0]
        uv, weight, partial = {}, {}, {}
        for m, name in enumerate(self.names):
            mask = (vivid & (nearest == m) & (d <= self.tol)).astype(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            found = []
            for k in range(1, n):
                area = int(stats[k, cv2.CC_STAT_AREA])
                if not self.min_area <= area <= self.max_area:
                    continue
                x, y, w, hh = (int(stats[k, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
                sl = (slice(y, y + hh), slice(x, x + w))
                member = labels[sl] == k
                if np.median(d[sl][member]) > self.tol / 2:
                    continue  # the fringe of a neighbouring hue's marker, not this marker's core
                if min(w, hh) / max(w, hh) < 0.35 or area < 0.3 * w * hh:
                    continue  # a streak (a coloured edge after video compression), not a disc
                wts = member * (s[sl].astype(np.float32) / 255.0) * (1.0 - d[sl] / (self.tol + 1e-6)).clip(0.05, 1.0)
                ys, xs = np.mgrid[y : y + hh, x : x + w]
                total = float(wts.sum())
                cu, cv_ = float((wts * xs).sum() / total), float((wts * ys).sum() / total)
                # a whole marker is a disc: area close to pi r^2 of its bounding box, and round
                r = max(w, hh) / 2.0
                fill = area / (np.pi * r * r)
                roundness = min(w, hh) / max(w, hh)
                found.append((area, cu, cv_, fill < 0.55 or roundness < 0.6))
            found.sort(reverse=True)
            found = found[: self.max_candidates]
            areas = np.array([f[0] for f in found], float)
            uv[name] = np.array([[f[1], f[2]] for f in found], float).reshape(-1, 2)
            partial[name] = np.array([f[3] for f in found], bool)
            weight[name] = np.where(partial[name], 0.3, 1.0) * (areas / areas.max() if len(found) else areas)
        return Candidates(uv, weight, partial)
