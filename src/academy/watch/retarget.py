"""From a person's hand keypoints to the robot's joint-position actions at 20 Hz.

Per hand and frame, from the glove's four markers:

- the pinch point: the midpoint of the thumb-tip and index-tip markers;
- the grasp yaw: from the thumb-to-index direction (the closing axis), flattened; the
  person's wrist tilt is not copied (the robot grasps from above);
- the aperture: the thumb-to-index distance where both tips were really seen (not placed
  from the rest of the hand), normalised by the person's own range over the recording (so
  body and hand size drop out), closed below ``close_at`` of that range and open again above
  ``open_at`` (hysteresis): the grasp detector.

Positions stay in the world frame: person and robot work at the same bench, and what must
match is where the hand is relative to the objects, not two different bodies' joint angles.
The robot's grasp site goes ``PINCH_BELOW_SITE`` above the person's pinch point (its pads
reach below the site), kept above the bench. A ``HandPlan`` per arm at the control rate is
the retargeted demonstration.

``ObjectCentricReplay`` executes plans on the robot, with its own IK per step (joint limits,
a joint-speed cap, the yaw or its half-turn twin, whichever the arm reaches) and two
corrections from what the robot itself observes, as a person's demonstration is meant: over
the last ``approach_s`` before each grasp the hand's x, y blend onto the object nearest the
person's grasp point; while it holds an object the hand moves so that the object (where the
robot measures it in its hand) follows the path the person's hand gave it; and it lets go only
once its arm has caught up with where the person let go (the plan's clock waits, up to 1 s).
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
FINGER_STEP = robot.FINGER_CLOSED / 6  # fingers shut or open over 0.3 s
TRAVEL_LIFT = 0.04  # m of extra height while the hand moves sideways
RELEASE_TOLERANCE = 0.015  # m: the arm must be this close to where the person let go (waiting up to 1 s)


@dataclass
class HandTrack:
    """One hand over time at the video rate: (T, 3) pinch point, (T,) yaw, (T,) aperture, (T,) closed."""

    pinch: np.ndarray
    yaw: np.ndarray
    aperture: np.ndarray
    closed: np.ndarray


@dataclass
class HandPlan:
    """One robot arm's retargeted demonstration at the control rate."""

    site: np.ndarray  # (T, 3) grasp-site targets
    yaw: np.ndarray  # (T,)
    closed: np.ndarray  # (T,) bool

    def grasps(self) -> list[tuple[int, int]]:
        """[close, open) step spans of each grasp."""
        edges = np.flatnonzero(np.diff(np.r_[0, self.closed.astype(int), 0]))
        return list(zip(edges[::2], edges[1::2]))


def hand_tracks(points: np.ndarray, names: tuple[str, ...], observed: np.ndarray | None = None, fps: float = 30.0,
                close_at: float = 0.65, open_at: float = 0.78, min_grasp_s: float = 0.3) -> dict[str, HandTrack]:
    """Hand tracks from smoothed keypoints (T, K, 3) named ``{side}_{marker}``; ``observed``
    (T, K) says which keypoints were seen (not placed from the rest of the hand).

    A hand is closed when its aperture falls below ``close_at`` of its open aperture (the 90th
    percentile over the track: a person's own hand size) and open again above ``open_at``;
    closures shorter than ``min_grasp_s`` are noise, not grasps."""
    observed = np.isfinite(points).all(-1) if observed is None else observed
    out = {}
    for side in SIDES:
        i, j = names.index(f"{side}_thumb_tip"), names.index(f"{side}_index_tip")
        thumb, index = points[:, i], points[:, j]
        pinch = (thumb + index) / 2
        axis = index - thumb
        seen = observed[:, i] & observed[:, j] & np.isfinite(axis).all(-1)
        yaw = np.arctan2(axis[:, 1], axis[:, 0]) - np.pi / 2  # robot yaw: its closing axis (hand y) at yaw + 90 deg
        yaw = _continuous_mod_pi(yaw)
        aperture = np.where(seen, np.linalg.norm(axis, axis=1), np.nan)
        valid = np.isfinite(aperture)
        open_ = np.percentile(aperture[valid], 90) if valid.any() else 1.0
        closed = np.zeros(len(aperture), bool)
        state = False
        for t, a in enumerate(aperture / open_):
            if np.isfinite(a):  # unseen: the hand keeps doing what it did
                state = a < close_at if not state else a < open_at
            closed[t] = state
        edges = np.flatnonzero(np.diff(np.r_[0, closed.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a < min_grasp_s * fps:
                closed[a:b] = False
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


def plan_hands(tracks: dict[str, HandTrack], fps: float, rest_radius: float = 0.08) -> dict[str, HandPlan]:
    """Hand tracks at the video rate -> a robot hand plan per arm at the control rate.

    A person rests their hands elsewhere than the robot can (the robot's arms are longer and
    its shoulders set otherwise): where each hand was at the start of the episode is taken as
    its rest, and targets near it move toward the robot's own rest (its home hand position),
    fully at the rest and fading out over ``rest_radius``.
    """
    plans = {}
    for side, tr in tracks.items():
        site = tr.pinch.copy()
        # the robot's hand is bigger than a person's: it travels higher when it moves sideways
        # fast, and comes down where the person's hand slows to grasp or place
        v_xy = np.linalg.norm(np.gradient(site[:, :2], axis=0), axis=1) * fps
        k = max(1, int(round(0.3 * fps)))
        v_xy = np.convolve(v_xy, np.ones(k) / k, mode="same")
        site[:, 2] += TRAVEL_LIFT * np.clip(v_xy / 0.15, 0.0, 1.0)
        rest = site[0].copy()
        w = np.exp(-np.sum((site - rest) ** 2, axis=1) / rest_radius**2)[:, None]
        site = site + w * (np.asarray(robot.HOME_HAND_POS[side]) - (rest + [0, 0, PINCH_BELOW_SITE]))
        site[:, 2] = np.maximum(site[:, 2] + PINCH_BELOW_SITE, MIN_SITE_Z)
        rate = 1 / CONTROL_DT
        yaw = tr.yaw * (1 - w[:, 0])  # at rest the robot's hand keeps its own yaw (0)
        plans[side] = HandPlan(resample(site, fps, rate), resample(yaw, fps, rate),
                               resample(tr.closed.astype(float), fps, rate) > 0.5)
    return plans


class ObjectCentricReplay:
    """Executes hand plans on the robot (an agent: ``reset(obs)``, ``act(obs)``)."""

    def __init__(self, plans: dict[str, HandPlan], approach_s: float = 0.6, settle_s: float = 0.3, model=None):
        model = model if model is not None else load_model()
        self.plans = plans
        self.ik = {side: ArmIK(model, side, REST[side]) for side in SIDES}
        self.fingers = {side: np.array([robot.JOINTS.index(f"{side}_{f}") for f in ("thumb", "index", "middle")])
                        for side in SIDES}
        self.approach = int(round(approach_s / CONTROL_DT))
        self.settle = int(round(settle_s / CONTROL_DT))
        self.spans = {side: plan.grasps() for side, plan in plans.items()}
        self.max_wait = int(round(1.0 / CONTROL_DT))
        self.errors: list[np.ndarray] = []

    def reset(self, obs: dict) -> None:
        self.t = 0
        self.q = np.array(robot.HOME)
        self.flip = {side: 0.0 for side in SIDES}
        self.closure = {side: 0.0 for side in SIDES}
        self.holding: dict[str, dict] = {}
        self.errors = []
        self.waited = 0

    def _grasp_at(self, side: str, t: int) -> tuple[int, int] | None:
        for a, b in self.spans[side]:
            if a - self.approach <= t < b:
                return a, b
        return None

    def _target(self, side: str, obs: dict) -> tuple[np.ndarray, float, bool]:
        plan, t = self.plans[side], min(self.t, len(self.plans[side].site) - 1)
        site, yaw, closed = plan.site[t].copy(), float(plan.yaw[t]), bool(plan.closed[t])
        span = self._grasp_at(side, t)
        objects = np.asarray(obs["objects"], float)[:, :3]
        if span is None:
            self.holding.pop(side, None)
            return site, yaw, closed
        a, b = span
        if t < a + self.settle:  # approach and closing: aim at the object the person went for
            grasp_site = plan.site[a]
            k = int(np.argmin(np.linalg.norm(objects[:, :2] - grasp_site[:2], axis=1)))
            w = float(np.clip((t - (a - self.approach)) / max(self.approach, 1), 0, 1))
            site[:2] += w * (objects[k, :2] - grasp_site[:2])
            self.holding[side] = {"object": k, "start": objects[k].copy(), "site_a": grasp_site.copy()}
            return site, yaw, closed
        h = self.holding.get(side)
        if h is None:
            return site, yaw, closed
        if "offset" not in h:  # how the robot holds it: object minus its own grasp site, measured
            h["offset"] = objects[h["object"]] - self.ik[side].site_pose(np.asarray(obs["proprio"][: robot.N_ACTUATORS]))[0]
        # the object follows the person's hand's path from where it was grasped
        wanted = h["start"] + (plan.site[t] - h["site_a"])
        return wanted - h["offset"], yaw, closed

    def act(self, obs: dict) -> np.ndarray:
        max_step = MAX_JOINT_SPEED * CONTROL_DT
        err = np.zeros(len(SIDES))
        measured = np.asarray(obs["proprio"][: robot.N_ACTUATORS])
        hold_clock = False
        for h, side in enumerate(SIDES):
            site, yaw, closed = self._target(side, obs)
            plan, t = self.plans[side], min(self.t, len(self.plans[side].site) - 1)
            releasing = closed and t + 1 < len(plan.closed) and not plan.closed[t + 1]
            if releasing and self.waited < self.max_wait:
                # let go only where the person did: wait while the arm catches up with the hand
                lag = np.linalg.norm(self.ik[side].site_pose(measured)[0] - site)
                hold_clock |= lag > RELEASE_TOLERANCE
            ik = self.ik[side]
            best = None
            # yaw, or the same pinch turned half round; never turned round with something in hand
            flips = (self.flip[side],) if self.closure[side] > 0 else (self.flip[side], np.pi - self.flip[side])
            for flip in flips:
                sol, e = ik.solve(self.q, site, yaw_down_quat(yaw + flip), iterations=10)
                if best is None or e < best[1] - 0.005:
                    best = (sol, e, flip)
            sol, err[h], self.flip[side] = best
            prev = self.q[ik.index]
            self.q[ik.index] = prev + np.clip(sol - prev, -max_step, max_step)
            target = robot.FINGER_CLOSED if closed else 0.0
            self.closure[side] += float(np.clip(target - self.closure[side], -FINGER_STEP, FINGER_STEP))
            self.q[self.fingers[side]] = self.closure[side]
        self.errors.append(err)
        if hold_clock:
            self.waited += 1
        else:
            self.t += 1
            self.waited = 0
        return self.q.copy()
