"""Keypoints of a recording in the world frame: detect per camera, triangulate, smooth.

Reads only the recording's videos, ``calibration.json`` and ``head_poses.csv``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from academy.human.body import MARKER_HUES, MARKER_SITES, SIDES
from academy.video import iter_frames
from academy.watch.detect import Candidates, LandmarkDetector, MarkerDetector
from academy.watch.rig import RecordingError, Rig, read_json
from academy.watch.segment import true_spans
from academy.watch.triangulate import reject_jumps, smooth, triangulate_all

# where each hand is expected when nothing recent says otherwise (the person's right is -y)
HAND_PRIOR = {"right": np.array([0.3, -0.25, 1.0]), "left": np.array([0.3, 0.25, 1.0])}
RECENT = 15  # frames: how long a last-seen position counts when telling the hands apart


@dataclass
class Keypoints:
    names: tuple[str, ...]
    raw: np.ndarray  # (T, K, 3) triangulated, NaN where fewer than two views agreed
    points: np.ndarray  # (T, K, 3) jumps dropped, hidden markers placed from their hand, gaps filled, smoothed
    observed: np.ndarray  # (T, K) triangulated and kept (not placed from the hand or filled in)
    views: np.ndarray  # (T, K) cameras that agreed
    rms_px: np.ndarray  # (T, K) reprojection error of the agreeing views
    fps: float


def default_detector() -> MarkerDetector:
    """The marker-glove detector for Academy's gloves: one colour per place on the hand."""
    return MarkerDetector({m: MARKER_HUES[m] for m in MARKER_SITES}, max_candidates=4)


class HandAssigner:
    """Tells the two gloves apart: each colour gives up to two points a frame. The knuckles
    (the markers seen best) go to the hand whose knuckle was last seen nearest, or by side of
    the body; every other marker then goes to the hand whose knuckle it is nearest, since a
    hand's markers stay within a hand's length of each other while two hands can cross."""

    ANCHOR = "knuckle"

    def __init__(self, roles: tuple[str, ...]):
        self.roles = roles
        self.last: dict[tuple[str, str], tuple[int, np.ndarray]] = {}

    def _reference(self, side: str, role: str, t: int) -> np.ndarray:
        seen = self.last.get((side, role))
        if seen and t - seen[0] <= RECENT:
            return seen[1]
        recent = [x for (s, _), (f, x) in self.last.items() if s == side and t - f <= RECENT]
        return np.mean(recent, axis=0) if recent else HAND_PRIOR[side]

    @staticmethod
    def _match(points: list[np.ndarray], refs: dict[str, np.ndarray], max_dist: float) -> dict[str, np.ndarray]:
        if len(points) >= 2:
            a, b = points[:2]
            r, l = refs[SIDES[0]], refs[SIDES[1]]
            keep = np.linalg.norm(a - r) + np.linalg.norm(b - l) <= np.linalg.norm(b - r) + np.linalg.norm(a - l)
            return dict(zip(SIDES, (a, b) if keep else (b, a)))
        if points:
            side = min(SIDES, key=lambda s: np.linalg.norm(points[0] - refs[s]))
            if np.linalg.norm(points[0] - refs[side]) < max_dist:
                return {side: points[0]}
        return {}

    def __call__(self, t: int, found: dict[str, list[np.ndarray]]) -> dict[tuple[str, str], np.ndarray]:
        out = {}
        anchors = self._match(found.get(self.ANCHOR, []), {s: self._reference(s, self.ANCHOR, t) for s in SIDES}, 0.15)
        for side, x in anchors.items():
            out[(side, self.ANCHOR)] = x
        for role in self.roles:
            if role == self.ANCHOR:
                continue
            refs = {s: anchors[s] if s in anchors else self._reference(s, role, t) for s in SIDES}
            for side, x in self._match(found.get(role, []), refs, 0.15).items():
                out[(side, role)] = x
        for (side, role), x in out.items():
            self.last[(side, role)] = (t, x)
        return out


def detect_camera(video: Path, rig: Rig, cam_index: int, detector: LandmarkDetector,
                  on_frame: Callable[[], None] | None = None) -> list[Candidates]:
    cam = rig.cameras[cam_index]
    out = []
    for frame in iter_frames(video):
        if frame.shape[:2] != (cam.height, cam.width):
            raise RecordingError(f"{video}: frames are {frame.shape[1]}x{frame.shape[0]}, calibration.json says "
                                 f"camera '{cam.name}' is {cam.width}x{cam.height}")
        c = detector(frame)
        if np.any(cam.dist):  # real lenses: undistort the pixel positions before triangulation
            for k, uv in c.uv.items():
                if len(uv):
                    c.uv[k] = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.K, cam.dist, P=cam.K).reshape(-1, 2)
        out.append(c)
        if on_frame:
            on_frame()
    return out


def recording_keypoints(folder: str | Path, detector: LandmarkDetector | None = None,
                        on_frame: Callable[[], None] | None = None, threshold_px: float = 4.0) -> Keypoints:
    """World-frame keypoints for every frame of a recording folder."""
    folder = Path(folder)
    rig = Rig.load(folder)
    detector = detector or default_detector()
    per_cam = []
    for i, cam in enumerate(rig.cameras):
        video = folder / "videos" / f"{cam.name}.mp4"
        if not video.exists():
            raise RecordingError(f"{video}: missing (calibration.json names camera '{cam.name}')")
        try:
            dets = detect_camera(video, rig, i, detector, on_frame)
        except ValueError as e:
            raise RecordingError(str(e)) from None
        if len(dets) != rig.n_frames:
            raise RecordingError(f"{video}: {len(dets)} frames, head_poses.csv has {rig.n_frames}: "
                                 f"the video is cut short or belongs to another recording")
        per_cam.append(dets)
    roles = tuple(detector.names)
    # a detector that already tells the hands apart (a learned landmarker) names keypoints per
    # hand; the glove detector names places on a hand, and the hands are told apart here
    per_hand = all(r.split("_", 1)[0] in SIDES for r in roles)
    names = roles if per_hand else tuple(f"{side}_{role}" for side in SIDES for role in roles)
    T, K = rig.n_frames, len(names)
    raw = np.full((T, K, 3), np.nan)
    views = np.zeros((T, K), int)
    rms = np.full((T, K), np.nan)
    assign = HandAssigner(roles)
    for t in range(T):
        P = [rig.projection(cam, t) for cam in rig.cameras]
        if per_hand:
            for k, name in enumerate(names):
                pts = triangulate_all(P, [d[t].uv[name] for d in per_cam], [d[t].weight[name] for d in per_cam],
                                      threshold_px, max_points=1)
                if pts:
                    raw[t, k], views[t, k], rms[t, k] = pts[0]
            continue
        found, stats = {}, {}
        for role in roles:
            pts = triangulate_all(P, [d[t].uv[role] for d in per_cam], [d[t].weight[role] for d in per_cam],
                                  threshold_px, max_points=2)
            found[role] = [X for X, _, _ in pts]
            stats.update({id(X): (n, r) for X, n, r in pts})
        for (side, role), X in assign(t, found).items():
            k = names.index(f"{side}_{role}")
            raw[t, k] = X
            views[t, k], rms[t, k] = stats[id(X)]
    points, observed = clean_tracks(raw, names, rig.fps)
    return Keypoints(names, raw, points, observed, views, rms, rig.fps)


def clean_tracks(raw: np.ndarray, names: tuple[str, ...], fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangulated tracks (T, K, 3) -> (points, observed): jumps in time dropped, markers that
    break their hand's shape dropped, hidden markers placed from their hand (and checked again),
    short gaps filled and smoothed."""
    raw = settle_hand_identity(raw, names)
    gated = hand_shape_gate(np.stack([reject_jumps(raw[:, k]) for k in range(raw.shape[1])], axis=1), names)
    filled = hand_shape_gate(fill_from_hand(gated, names, fps), names)
    points = np.stack([smooth(filled[:, k]) for k in range(raw.shape[1])], axis=1)
    return points, np.isfinite(gated).all(-1)


MEET = 0.15  # m: hands nearer than this (their markers' means) may be mistaken for each other


def settle_hand_identity(raw: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The gloves are alike, so where two hands meet (passing an object) frame-to-frame tracking
    can leave them swapped for the rest of the take. Between meetings each hand keeps to its own
    side of the body (the right hand at lower y) for most of the time: a stretch between two
    meetings where the hand called right keeps left of the one called left is swapped back.
    Stretches are cut where, within a meeting, the hands came nearest, and where the hands, apart,
    trade places from one frame to the next (the tracking led across by a stray point)."""
    cols = {side: [names.index(f"{side}_{r}") for r in MARKER_SITES if f"{side}_{r}" in names] for side in SIDES}
    if any(len(c) < len(MARKER_SITES) for c in cols.values()):
        return raw
    with warnings.catch_warnings():  # frames where a hand is unseen: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = {side: np.nanmean(raw[:, c], axis=1) for side, c in cols.items()}
    d = np.linalg.norm(centre["right"] - centre["left"], axis=1)
    near = np.nan_to_num(d, nan=np.inf) < MEET
    cuts = [a + int(np.nanargmin(d[a:b])) for a, b in true_spans(near)]
    # ... and where the two hands, apart, trade places from one frame to the next (a stray point
    # taken for one hand's knuckle: the tracking follows it to the other hand)
    r, l = (_carried(centre[s]) for s in SIDES)
    kept = np.linalg.norm(r[1:] - r[:-1], axis=1) + np.linalg.norm(l[1:] - l[:-1], axis=1)
    crossed = np.linalg.norm(r[1:] - l[:-1], axis=1) + np.linalg.norm(l[1:] - r[:-1], axis=1)
    cuts = sorted({*cuts, *(1 + np.flatnonzero(np.nan_to_num(kept - crossed, nan=-np.inf) > MEET))})
    out = raw.copy()
    for a, b in zip([0, *cuts], [*cuts, len(raw)]):
        yr, yl = np.nanmedian(centre["right"][a:b, 1]), np.nanmedian(centre["left"][a:b, 1])
        if np.isfinite(yr) and np.isfinite(yl) and yr > yl:
            out[a:b, cols["right"]], out[a:b, cols["left"]] = raw[a:b, cols["left"]], raw[a:b, cols["right"]]
    return out


def _carried(x: np.ndarray) -> np.ndarray:
    """(T, 3) with each unseen (NaN) row the last seen one before it."""
    out = np.array(x, float)
    for t in range(1, len(out)):
        if not np.isfinite(out[t]).all():
            out[t] = out[t - 1]
    return out


# The farthest two markers of one glove can be apart (m): the largest distance in the rendered
# people's ground truth (stature 0.92-1.08 of an average adult), plus a quarter.
HAND_SPAN = {("wrist", "knuckle"): 0.11, ("wrist", "thumb_tip"): 0.20, ("wrist", "index_tip"): 0.21,
             ("knuckle", "thumb_tip"): 0.12, ("knuckle", "index_tip"): 0.10, ("thumb_tip", "index_tip"): 0.12}


def hand_shape_gate(points: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Markers that cannot belong to the hand they were given: per frame, while two of a hand's
    markers are farther apart than a hand allows (``HAND_SPAN``), the marker in most such pairs
    (of two alike, the one farther from the hand's other markers) is dropped (NaN). Catches a
    marker taken from the other glove where the hands meet, and a hidden marker placed wrongly."""
    out = np.array(points, float)
    for side in SIDES:
        col = {r: names.index(f"{side}_{r}") for r in MARKER_SITES if f"{side}_{r}" in names}
        pairs = [(col[a], col[b], d) for (a, b), d in HAND_SPAN.items() if a in col and b in col]
        if not pairs:
            continue
        ia, ja, span = (np.array(x) for x in zip(*pairs))
        with np.errstate(invalid="ignore"):  # NaN distances compare False
            broken = (np.linalg.norm(out[:, ia] - out[:, ja], axis=-1) > span).any(axis=1)
        for t in np.flatnonzero(broken):  # only the frames where the hand is out of shape
            while True:
                bad = [(i, j) for i, j, d in pairs
                       if np.all(np.isfinite(out[t, [i, j]])) and np.linalg.norm(out[t, i] - out[t, j]) > d]
                if not bad:
                    break
                count = {}
                for i, j in bad:
                    count[i] = count.get(i, 0) + 1
                    count[j] = count.get(j, 0) + 1
                seen = [k for k in col.values() if np.all(np.isfinite(out[t, k]))]
                far = {k: sum(np.linalg.norm(out[t, k] - out[t, m]) for m in seen) for k in count}
                out[t, max(count, key=lambda k: (count[k], far[k]))] = np.nan
    return out


# which marker of the same hand stands in for a hidden one, best first
STAND_INS = {"wrist": ("knuckle", "thumb_tip"), "knuckle": ("wrist", "index_tip"),
             "thumb_tip": ("knuckle", "index_tip"), "index_tip": ("knuckle", "thumb_tip")}


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -0.999:
        return np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def fill_from_hand(points: np.ndarray, names: tuple[str, ...], fps: float, max_gap_s: float = 3.0) -> np.ndarray:
    """Hidden markers placed from a visible marker of the same hand: the offset between the two
    in the nearest frame (within ``max_gap_s``) where both were seen, turned by how the hand's
    wrist-to-knuckle direction turned since. A hand is not rigid (the thumb moves), so this is
    for short occlusions; longer ones stay NaN."""
    out = np.array(points, float)
    ok = np.all(np.isfinite(points), axis=-1)
    reach = int(round(max_gap_s * fps))
    for side in SIDES:
        col = {r: names.index(f"{side}_{r}") for r in MARKER_SITES if f"{side}_{r}" in names}
        if len(col) < len(MARKER_SITES):
            continue
        w, kn = col["wrist"], col["knuckle"]
        for role, k in col.items():
            seen_with = {ref: np.flatnonzero(ok[:, k] & ok[:, col[ref]]) for ref in STAND_INS[role]}
            for t in np.flatnonzero(~ok[:, k]):
                for ref in STAND_INS[role]:
                    j, both = col[ref], seen_with[ref]
                    if not ok[t, j] or not len(both):
                        continue
                    t0 = both[np.argmin(np.abs(both - t))]
                    if abs(t0 - t) > reach:
                        continue
                    R = np.eye(3)
                    if ok[t, w] and ok[t, kn] and ok[t0, w] and ok[t0, kn]:
                        R = _rotation_between(points[t0, kn] - points[t0, w], points[t, kn] - points[t, w])
                    out[t, k] = points[t, j] + R @ (points[t0, k] - points[t0, j])
                    break
    return out


def truth_keypoints(folder: str | Path) -> Keypoints:
    """A rendered recording's ground-truth keypoints as if every marker had been seen exactly:
    for replaying a person's motion with perception taken out (benchmarks/watch_truth.py). Never
    used by ``academy watch``."""
    path = Path(folder) / "ground_truth.npz"
    if not path.exists():
        raise RecordingError(f"{path}: missing (only rendered recordings carry ground truth)")
    gt = np.load(path)
    pts = np.asarray(gt["keypoints"], float)
    T, K = pts.shape[:2]
    fps = float(read_json(Path(folder) / "scene.json", "the scene description").get("fps", 30))
    return Keypoints(tuple(str(n) for n in gt["names"]), pts, pts, np.ones((T, K), bool), np.zeros((T, K), int),
                     np.zeros((T, K)), fps)


def mpjpe_mm(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-point error (mm) where the prediction exists: flattened over frames and keypoints."""
    err = np.linalg.norm(pred - truth, axis=-1) * 1000.0
    return err[np.isfinite(err)]
