"""From a person's hand keypoints to the robot's joint-position actions at 20 Hz.

Per hand and frame, from the glove's four markers:

- the pinch point: the midpoint of the thumb-tip and index-tip markers;
- the closing axis: thumb tip to index tip, flattened; its yaw is the grasp yaw the robot's
  top-down grasp takes (the person's wrist tilt is not copied: the robot grasps from above);
- the aperture: the thumb-to-index distance, normalised by the person's own range over the
  recording (so body and hand size drop out), closed below ``close_at`` of that range and open
  again above ``open_at`` (hysteresis): this is the grasp detector.

Positions stay in the world frame: the person and the robot work at the same bench, and what
must match is where the hand is relative to the objects, not the joint angles of two
different bodies. The robot's grasp site goes ``PINCH_BELOW_SITE`` above the person's pinch
point (the robot's pads reach below its grasp site). Paths are clipped to the robot's safe
workspace above the bench, resampled to the control rate, and solved by the robot's own IK
frame by frame from the previous solution, with its joint limits and a cap on joint speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from academy.human.motion import PINCH_BELOW_SITE
from academy.sim import robot
from academy.sim.env import CONTROL_DT
from academy.sim.experts.base import REST
from academy.sim.experts.ik import ArmIK, yaw_down_quat
from academy.sim.world import BENCH_TOP_Z, load_model

SIDES = robot.SIDES
MIN_SITE_Z = BENCH_TOP_Z + 0.045  # the grasp site stays this high: pads 35 mm below it stay off the bench
MAX_JOINT_SPEED = 3.0  # rad/s


@dataclass
class HandTrack:
    """One hand over time at the video rate: (T, 3) pinch point, (T,) yaw, (T,) aperture, (T,) closed."""

    pinch: np.ndarray
    yaw: np.ndarray
    aperture: np.ndarray
    closed: np.ndarray


def hand_tracks(points: np.ndarray, names: tuple[str, ...], close_at: float = 0.35, open_at: float = 0.5) -> dict[str, HandTrack]:
    """Hand tracks from smoothed keypoints (T, K, 3) named ``{side}_{marker}``."""
    out = {}
    for side in SIDES:
        thumb = points[:, names.index(f"{side}_thumb_tip")]
        index = points[:, names.index(f"{side}_index_tip")]
        pinch = (thumb + index) / 2
        axis = index - thumb
        yaw = np.arctan2(axis[:, 1], axis[:, 0]) - np.pi / 2  # robot yaw: its closing axis (hand y) at yaw + 90 deg
        yaw = _continuous_mod_pi(yaw)
        aperture = np.linalg.norm(axis, axis=1)
        valid = np.isfinite(aperture)
        lo, hi = (np.percentile(aperture[valid], [3, 97]) if valid.any() else (0.0, 1.0))
        norm = (aperture - lo) / max(hi - lo, 1e-3)
        closed = np.zeros(len(norm), bool)
        state = False
        for t, n in enumerate(norm):
            if np.isfinite(n):
                state = n < close_at if not state else n < open_at
            closed[t] = state
        out[side] = HandTrack(pinch, yaw, aperture, closed)
    return out


def _continuous_mod_pi(yaw: np.ndarray) -> np.ndarray:
    """A top-down pinch is the same grasp turned by pi: keep yaw in (-pi/2, pi/2], then unwrap by pi steps."""
    y = (np.asarray(yaw, float) + np.pi / 2) % np.pi - np.pi / 2
    ok = np.isfinite(y)
    if ok.sum() > 1:
        y[ok] = np.unwrap(y[ok], period=np.pi)
    return y


def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling along axis 0 (NaN-free input)."""
    t_in = np.arange(len(x)) / fps_in
    t_out = np.arange(0.0, t_in[-1] + 1e-9, 1.0 / fps_out)
    flat = x.reshape(len(x), -1)
    return np.stack([np.interp(t_out, t_in, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(len(t_out), *x.shape[1:])


class Retargeter:
    """Hand tracks (video rate) -> robot joint targets (T20, 28) at the control rate."""

    def __init__(self, model=None):
        model = model if model is not None else load_model()
        self.ik = {side: ArmIK(model, side, REST[side]) for side in SIDES}
        self.finger_index = {side: np.array([robot.JOINTS.index(f"{side}_{f}") for f in ("thumb", "index", "middle")])
                             for side in SIDES}

    def __call__(self, tracks: dict[str, HandTrack], fps: float) -> tuple[np.ndarray, np.ndarray]:
        """Joint targets (T, 28) and the grasp site's IK error (T, 2) in m."""
        per_side = {}
        for side, tr in tracks.items():
            pinch = tr.pinch.copy()
            pinch[:, 2] = np.maximum(pinch[:, 2] + PINCH_BELOW_SITE, MIN_SITE_Z)
            per_side[side] = (resample(pinch, fps, 1 / CONTROL_DT), resample(tr.yaw, fps, 1 / CONTROL_DT),
                              resample(tr.closed.astype(float), fps, 1 / CONTROL_DT) > 0.5)
        T = len(next(iter(per_side.values()))[0])
        q = np.array(robot.HOME)
        actions = np.zeros((T, robot.N_ACTUATORS))
        errors = np.zeros((T, len(SIDES)))
        max_step = MAX_JOINT_SPEED * CONTROL_DT
        closure = {side: 0.0 for side in SIDES}
        for t in range(T):
            for h, side in enumerate(SIDES):
                pinch, yaw, closed = per_side[side]
                ik = self.ik[side]
                sol, err = ik.solve(q, pinch[t], yaw_down_quat(float(yaw[t])), iterations=10)
                prev = q[ik.index]
                q[ik.index] = prev + np.clip(sol - prev, -max_step, max_step)
                errors[t, h] = err
                # fingers: shut over 0.3 s when the person's hand closes, open as fast
                target = robot.FINGER_CLOSED if closed[t] else 0.0
                closure[side] += float(np.clip(target - closure[side], -0.04 / 6, 0.04 / 6))
                q[self.finger_index[side]] = closure[side]
            actions[t] = q
        return actions, errors
