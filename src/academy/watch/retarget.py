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
a joint-speed cap, the yaw or its half-turn twin, whichever the arm reaches) and corrections
from what the robot itself observes and knows of its workcell, as a person's demonstration is
meant (the person shows which object goes where; the robot's own sensing says exactly where):

- grasp: over the last ``approach_s`` before each grasp the hand's x, y blend onto the object
  nearest the person's grasp point;
- carry: while it holds an object the hand moves so that the object (where the robot measures
  it in its hand) follows the path the person's hand gave it (a cell no higher than
  ``MAX_CELL_LIFT`` above where it was taken);
- place: where the person lets go within ``SNAP_RADIUS`` of one of the workcell's places (a
  bin, the fixture's socket, the tray's target mark: ``Place``), the carried path bends over
  its last ``SNAP_FADE`` so the object arrives inside that place, turned to the place's
  orientation where it has one (the socket's square); a release elsewhere is left as it was;
- release: it lets go only once its arm has caught up with where the person let go (the plan's
  clock waits, up to 1 s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from academy.human.motion import PINCH_BELOW_SITE
from academy.sim import robot
from academy.sim.env import CONTROL_DT
from academy.sim.experts.base import REST
from academy.sim.experts.ik import ArmIK, yaw_down_quat
from academy.sim.world import BENCH_TOP_Z, CELL_RADIUS, OBJECTS, PART_HALF, load_model, quat_up_axis, quat_yaw
from academy.watch.segment import true_spans

SIDES = robot.SIDES
MIN_SITE_Z = BENCH_TOP_Z + 0.045  # the grasp site stays this high: pads 35 mm below it stay off the bench
MAX_JOINT_SPEED = 3.0  # rad/s
FINGER_STEP = robot.FINGER_CLOSED / 6  # fingers shut or open over 0.3 s
TRAVEL_LIFT = 0.04  # m of extra height while the hand moves sideways
PART_END_GRASP = PART_HALF[2] - 0.03  # m from the lying part's centre: where a hand takes it, toward one end
# Where the robot passes the lying part between its hands (its centre): on a grid of centres
# (x 0.30-0.44, y -0.06-0.06, z 1.00-1.12 m), both arms reach their top-down grasps of its two
# ends here within 0.15 mm of pose error, against 12-13 mm at the handover expert's 1.06 m height
# above the same point (python benchmarks/pass_reach.py).
HANDOVER_PASS = np.array([0.35, 0.0, 1.00])
APPROACH_ABOVE = 0.05  # m: the hand stays this far above its grasp until it is over it
YAW_SMOOTH_S = 0.5
# m: a cell is carried no higher than this above where it was taken (its bottom then clears the bins'
# walls by 6 cm). People lift a light cell up to 19 cm on the way to its bin; held level that high
# over the bench's near side the robot's arm stalls, tilts the hand, and the thin cell, pinched
# between two fingertips, works its way out of the grip and falls (docs/watch.md)
MAX_CELL_LIFT = 0.12
CARRY_SPEED = 0.3  # m/s of the hand with an object in it (the sorting expert's carry is 0.2)
LET_GO = 0.4 * robot.FINGER_CLOSED  # finger closure while letting go (the sorting expert's, for an 18 mm cell)
LATE_RELEASE_S = 1.5  # s: how late a cell's release may be seen over a bin
LATE_RELEASE_DROP = 0.03  # m: ... from this much above where it came down there
MIN_SEEN = 3  # frames: both fingertips seen open for fewer in a row amid their hiding is a glimpse, not a reading
MAX_APERTURE = 1.25  # of the hand's open aperture: wider is a measurement, not a hand
MAX_DEFER_S = 3.0  # s a hand keeps hold of an object in mid-air, waiting for the other hand to take it
RELEASE_TOLERANCE = 0.015  # m: the arm must be this close to where the person let go (waiting up to 1 s)
GRASP_TOLERANCE = 0.003  # m: ... and this close to the grasp before its fingers close
SNAP_RADIUS = 0.04  # m: a release this near a place (beyond its own extent) is meant for it
SNAP_FULL, SNAP_FADE = 0.03, 0.10  # m from the release point: fully inside the place / no correction yet
POSTURE_SWITCH = 0.005  # m: a grasp the arm misses by more than this from where it is, and reaches this much
# closer from its home posture, is reached from there
TRAY_REACH = 0.08  # m: a release this near the tray's mark (over the 18 x 20 cm tray) is meant for it
SERVO_HALF = 0.01  # m: a place no wider than this (the socket, the tray's mark) is servoed into
PLACE_GAIN = 0.3  # per step: how fast the carried object's measured error is taken out over a place


def least_turn(target: float, yaw: float, period: float) -> float:
    """The smallest turn that brings ``yaw`` onto ``target`` modulo a symmetry of ``period``."""
    return float((target - yaw + period / 2) % period - period / 2)


@dataclass(frozen=True)
class Place:
    """Somewhere the workcell takes an object: ``centre`` (x, y), the ``half`` extent (m) within
    which an object may be let go, and, for a place that fits one way (a square socket), its
    ``yaw`` and the ``period`` of its symmetry. A place in mid-air (``z``, not a ``support``) is
    where one hand passes an object to the other: it is let go there only once the other hand
    has it. People pass an object wherever their hands meet, so the pass reaches farther (10 cm)."""

    centre: tuple[float, float]
    half: float = 0.0
    yaw: float | None = None
    period: float = np.pi / 2
    z: float | None = None
    support: bool = True
    reach: float = SNAP_RADIUS
    walls: bool = False  # a bin: its walls hide the fingertips of a hand letting go of a cell in it

    def snap(self, xy: np.ndarray) -> np.ndarray | None:
        """The nearest point inside this place to a release point ``xy``, or None if too far."""
        c = np.asarray(self.centre)
        inside = c + np.clip(xy - c, -self.half, self.half)
        return inside if np.linalg.norm(xy - inside) <= self.reach else None

    def turn(self, yaw: float) -> float:
        """The least turn that brings an object's ``yaw`` to this place's orientation (0 if none)."""
        return 0.0 if self.yaw is None else least_turn(self.yaw, yaw, self.period)


def object_grasp(name: str, pose: np.ndarray, xy: np.ndarray, yaw: float,
                 held_at: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """The top-down grasp an object affords nearest a person's: (the grasp site's x, y, z, the
    least turn from the hand's ``yaw``, None where any yaw will do). The height is the robot's own for that object (its
    experts'): where its pads close on the object's middle, wherever the object is, on the
    bench or in the other hand. A round cell is taken at its centre at any yaw; the part
    standing at its centre across a face (every quarter turn); the part lying across its long
    axis (every half turn), near an end: the one nearer the person's hand, or the end away from
    where the other hand holds it (``held_at``, that hand's grasp site). A person's hand, read from markers, is off by millimetres and
    its yaw by degrees, more where the tips are hidden; the robot takes the object's grasp."""
    from academy.sim.experts import handover, place_part, sort_cells

    centre = np.asarray(pose[:3], float)
    if name != "part":
        return np.r_[centre[:2], centre[2] + sort_cells.GRASP_ABOVE_CENTRE], None
    up = quat_up_axis(pose[3:])
    if abs(up[2]) > 0.9:  # standing: the closing axis (yaw + 90 deg) along a face
        base, period = quat_yaw(pose[3:]), np.pi / 2
        at = np.r_[centre[:2], centre[2] + place_part.GRASP_ABOVE_CENTRE]
    else:  # lying: close across the long axis, whose direction is the hand's yaw
        u = up[:2] / np.linalg.norm(up[:2])
        base, period = float(np.arctan2(u[1], u[0])), np.pi
        along = float(np.dot(np.asarray(xy, float) - centre[:2], u))
        if held_at is not None:
            along = -float(np.dot(np.asarray(held_at, float)[:2] - centre[:2], u))
        at = np.r_[centre[:2] + np.sign(along or 1.0) * PART_END_GRASP * u, centre[2] + handover.GRASP_ABOVE_CENTRE]
    return at, least_turn(base, yaw, period)


def workcell_places(world, goal: dict) -> list[Place]:
    """The places of a workcell, read from its model after a scene's reset: the three bins
    (a cell may land anywhere a cell's width inside the walls), the fixture's socket (exact, and
    square), the tray's target mark where the task has one (within a third of its radius; what is
    let go anywhere over the tray is meant for it), and
    the robot's own place for passing an object between its hands (``HANDOVER_PASS``): a person
    passes it where their arms meet, which the robot's arms, longer and set otherwise, reach
    badly; the pass moves to where both of the robot's arms take it from above."""
    from academy.sim.tasks.handover import TARGET_RADIUS
    from academy.sim.world import BIN_INNER_HALF

    bin_half = BIN_INNER_HALF - 2 * CELL_RADIUS - 0.003
    places = [Place(tuple(world.bin_centre(i)), bin_half, walls=True) for i in range(len(world.bin_body))]
    places.append(Place(tuple(world.fixture_centre()), 0.0, quat_yaw(world.model.body_quat[world.fixture_body])))
    if "target" in goal:
        # the only place on the tray: whatever is let go over the tray is meant for it
        places.append(Place(tuple(np.asarray(goal["target"], float)[:2]), TARGET_RADIUS / 3, reach=TRAY_REACH))
    places.append(Place(tuple(HANDOVER_PASS[:2]), 0.005, yaw=0.0, period=np.pi, z=float(HANDOVER_PASS[2]),
                        support=False, reach=0.10))
    return places


class Released(NamedTuple):
    """A hand's last letting go: the step it began, where and at what yaw, and the object's index."""

    step: int
    site: np.ndarray
    yaw: float
    object: int
    passed: bool = False  # handed to the other hand (let go in mid-air, the other holding it)


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
        return true_spans(self.closed)


def hand_tracks(points: np.ndarray, names: tuple[str, ...], observed: np.ndarray | None = None, fps: float = 30.0,
                close_at: float = 0.76, open_at: float = 0.82, min_grasp_s: float = 0.3) -> dict[str, HandTrack]:
    """Hand tracks from smoothed keypoints (T, K, 3) named ``{side}_{marker}``; ``observed``
    (T, K) says which keypoints were seen (not placed from the rest of the hand).

    A hand is closed when its aperture falls below ``close_at`` of its open aperture (the 90th
    percentile over the track: a person's own hand size) and open again above ``open_at``;
    closures and openings shorter than ``min_grasp_s`` are noise, not grasps and releases (a
    person's regrasp opens the hand for 0.5 s or more)."""
    observed = np.isfinite(points).all(-1) if observed is None else observed
    out = {}
    for side in SIDES:
        i, j = names.index(f"{side}_thumb_tip"), names.index(f"{side}_index_tip")
        thumb, index = points[:, i], points[:, j]
        pinch = (thumb + index) / 2
        axis = index - thumb
        seen = observed[:, i] & observed[:, j] & np.isfinite(axis).all(-1)
        aperture = np.where(seen, np.linalg.norm(axis, axis=1), np.nan)
        valid = np.isfinite(aperture)
        open_ = np.percentile(aperture[valid], 90) if valid.any() else 1.0
        ratio = aperture / open_
        ratio[ratio > MAX_APERTURE] = np.nan  # wider than a hand opens: a tip taken from the other glove
        for a, b in true_spans(np.isfinite(ratio)):  # a glimpse of both tips amid their hiding that
            if b - a < MIN_SEEN and np.nanmax(ratio[a:b]) >= close_at:  # reads the hand open is as
                ratio[a:b] = np.nan  # likely the other glove's tips, wide apart (a close is two tips together)
        # the yaw only from the readings the aperture keeps: two tips that are not this hand's
        # (wider apart than it opens, a glimpse) point anywhere
        yaw = np.arctan2(axis[:, 1], axis[:, 0]) - np.pi / 2  # robot yaw: its closing axis (hand y) at yaw + 90 deg
        yaw = _continuous_mod_pi(np.where(np.isfinite(ratio), yaw, np.nan))
        yaw = _fill_nan(yaw)  # where the tips are hidden the hand keeps the yaw it was last seen with
        # two fingertip markers give the yaw to a few degrees a frame; the robot's wrist turns
        # its whole arm to follow, so the yaw is smoothed over YAW_SMOOTH_S (a person's hand turns slower)
        k = max(1, int(round(YAW_SMOOTH_S * fps)) | 1)
        yaw = np.convolve(np.pad(yaw, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
        closed = np.zeros(len(ratio), bool)
        state = False
        for t, a in enumerate(ratio):
            if np.isfinite(a):  # unseen: the hand keeps doing what it did
                state = a < close_at if not state else a < open_at
            closed[t] = state
        _time_unseen_changes(closed, ratio, pinch, points[:, names.index(f"{side}_wrist")], fps)
        for a, b in true_spans(~closed):  # a hand seen open for less than a person takes to let go
            if 0 < a and b < len(closed) and b - a < min_grasp_s * fps:  # and take hold again: still closed
                closed[a:b] = True
        for a, b in true_spans(closed):
            if b - a < min_grasp_s * fps:
                closed[a:b] = False
        out[side] = HandTrack(pinch, yaw, aperture, closed)
    return out


def pauses(pinch: np.ndarray, fps: float, speed: float = 0.03, min_s: float = 0.25) -> list[tuple[int, int]]:
    """[start, end) frame spans where the hand is still: its speed (over 0.2 s) under ``speed``
    m/s for at least ``min_s``."""
    if len(pinch) < 3:
        return []
    v = np.linalg.norm(np.gradient(pinch, axis=0), axis=1) * fps
    k = max(1, int(round(0.2 * fps)))
    v = np.convolve(np.nan_to_num(v, nan=np.inf), np.ones(k) / k, mode="same")
    return [(a, b) for a, b in true_spans(v < speed) if b - a >= min_s * fps]


def _time_unseen_changes(closed: np.ndarray, ratio: np.ndarray, pinch: np.ndarray, wrist: np.ndarray,
                         fps: float) -> None:
    """Where the fingertips were hidden while the hand closed or opened (a hand reaching in to
    take an object from the other hand hides its own tips), the change is only seen once they
    reappear, seconds late. A person closes or opens a hand while it is still. A hand that went
    into hiding open and came out closed closed as it came to rest: at the start of the first
    pause of its wrist in between (the wrist marker, on the back of the hand, stays in view where
    the fingers meet the other hand; the pinch, placed from the rest of the hand there, wanders).
    One that went in closed and came out open opened at the end of its last pause (in place)."""
    seen = np.isfinite(ratio)
    for a, b in true_spans(~seen):
        if a == 0 or b >= len(closed) or closed[a - 1] == closed[b]:
            continue
        if closed[b]:
            still = [(s + a, e + a) for s, e in pauses(wrist[a:b], fps)]
            at = still[0][0] if still else None
        else:
            still = [(s + a, e + a) for s, e in pauses(pinch[a:b], fps)]
            at = still[-1][1] if still else None
        if at is None:
            continue
        closed[a:b] = closed[a - 1]
        closed[at:b] = closed[b]


def _fill_nan(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN, the nearest value held beyond the ends (0 if all NaN)."""
    ok = np.isfinite(x)
    if not ok.any():
        return np.zeros_like(x)
    return np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])


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

    def __init__(self, plans: dict[str, HandPlan], approach_s: float = 0.6, settle_s: float = 0.3, model=None,
                 places: list[Place] | tuple = ()):
        model = model if model is not None else load_model()
        self.plans = {side: replace(plan, closed=plan.closed.copy()) for side, plan in plans.items()}
        self.places = list(places)
        self.ik = {side: ArmIK(model, side, REST[side]) for side in SIDES}
        self.fingers = {side: np.array([robot.JOINTS.index(f"{side}_{f}") for f in ("thumb", "index", "middle")])
                        for side in SIDES}
        self.approach = int(round(approach_s / CONTROL_DT))
        self.settle = int(round(settle_s / CONTROL_DT))
        for plan in self.plans.values():
            for a, b in plan.grasps():
                if b - a <= self.settle:
                    # closed and opened again before it settled, carrying nothing: a person's own
                    # adjustment of a grasp (closing, not happy, opening to adjust), not the robot's
                    # to copy, as its grasp is the object's own; copied, its fingers shut on the
                    # part and squeezed it aside (place_part 7010 from ground truth)
                    plan.closed[a:b] = False
        self.spans = {side: plan.grasps() for side, plan in self.plans.items()}
        self.max_wait = int(round(1.0 / CONTROL_DT))
        self.max_defer = int(round(MAX_DEFER_S / CONTROL_DT))
        self.home = np.array(robot.HOME, float)
        self.errors: list[np.ndarray] = []

    def reset(self, obs: dict) -> None:
        self.t = 0  # the plan's clock: it waits while the arm catches up
        self.step = 0  # steps taken: what a hand letting go is timed by
        self.q = np.array(robot.HOME)
        self.flip = {side: 0.0 for side in SIDES}
        self.free = {side: False for side in SIDES}  # whether the arm's IK leaves a joint at its stop out of the step
        self.closure = {side: 0.0 for side in SIDES}
        self.holding: dict[str, dict] = {}
        self.released: dict[str, Released] = {}
        self.flip_for: dict[str, tuple[int, int]] = {}  # the grasp span each arm's way round was chosen for
        self.posture: dict[str, np.ndarray] = {}  # ... and the arm's joints for that grasp (the IK's seed on the way)
        self.turn_for: dict[str, float] = {}
        self.errors = []
        self.waited = 0
        self.last_here: dict[str, np.ndarray] = {}  # each grasp site where it was measured last, closing in

    def _grasp_at(self, side: str, t: int) -> tuple[int, int] | None:
        for a, b in self.spans[side]:
            if a - self.approach <= t < b:
                return a, b
        return None

    def _target(self, side: str, obs: dict) -> tuple[np.ndarray, float, bool]:
        plan, t = self.plans[side], min(self.t, len(self.plans[side].site) - 1)
        site, yaw, closed = plan.site[t].copy(), float(plan.yaw[t]), bool(plan.closed[t])
        span = self._grasp_at(side, t)
        held = self.holding.get(side)
        if held is not None and "passing" in held and held["span"] != span:
            span = None  # holding an object at the pass for the other hand: no new grasp until it is taken
        poses = np.asarray(obs["objects"], float)
        objects = poses[:, :3]
        if span is None:
            h = self.holding.get(side)
            unsupported = h is not None and (h.get("place") is None or not h["place"][0].support)
            if h is not None and "last" in h and unsupported and not self._other_holds(side, h["object"]):
                # never let go of an object in mid-air: where the person opened their hand over no
                # place, the other hand was taking it; wait (in place) until it has
                h["deferred"] = h.get("deferred", 0) + 1
                if h["deferred"] <= self.max_defer or ("passing" in h and self._other_still_to_take(side, t)):
                    return h["last"][0], h["last"][1], True
            if h is not None and "last" in h:
                self.released[side] = Released(self.step, *h["last"], h["object"],
                                               unsupported and self._other_holds(side, h["object"]))
            self.holding.pop(side, None)
            return self._rising(side) or (site, yaw, closed)
        a, b = span
        if t < a + self.settle:  # approach and closing: aim at the object the person went for
            grasp_site = plan.site[a]
            k = int(np.argmin(np.linalg.norm(objects[:, :2] - grasp_site[:2], axis=1)))
            gave = self.released.get(side)
            if gave is not None and gave.object == k and self._other_holds(side, k):
                # a hand does not take back what it has just handed over: where the gloves mix at a
                # pass, the giving hand can be read closing again after it let go
                return self._rising(side) or (site, yaw, False)
            w = float(np.clip((t + 1 - (a - self.approach)) / max(self.approach, 1), 0, 1))  # 1 from a - 1
            # ... where and how the object affords a grasp nearest the person's (its other end,
            # where the other hand holds it)
            other = self.holding.get(SIDES[1 - SIDES.index(side)])
            held_at = other["last"][0] if other is not None and other["object"] == k and "last" in other else None
            at, turn = object_grasp(OBJECTS[k], poses[k], grasp_site[:2], float(plan.yaw[a]),
                                    held_at)
            if self.flip_for.get(side) != span:  # the arm's way round for this grasp, chosen once
                # (and for a round cell, which any yaw takes, the yaw near the person's the arm reaches best),
                # with the arm's posture for it: from where the arm is, or from its home where the arm,
                # as the person's path left it, cannot reach the grasp (an elbow or wrist at its stop)
                turns = (turn,) if turn is not None else tuple(np.deg2rad([0, -30, 30, -60, 60]))
                sols = {(d, f): [self.ik[side].solve(q0, at, yaw_down_quat(plan.yaw[a] + d + f), iterations=30)
                                 for q0 in (self.q, self.home)] for d in turns for f in (0.0, np.pi)}
                d, self.flip[side] = min(sols, key=lambda k: min(e for _, e in sols[k]) + 0.002 * abs(k[0]))
                self.flip_for[side] = span
                self.turn_for[side] = d
                (_, here), (home, from_home) = sols[(d, self.flip[side])]
                self.posture.pop(side, None)
                if here > POSTURE_SWITCH and from_home < here - POSTURE_SWITCH:
                    self.posture[side] = home
            turn = self.turn_for[side] if turn is None else turn
            dyaw = w * turn
            if held_at is None:  # from the bench: the person's approach, onto the object's grasp
                # (its height too: the person's pinch, read from markers, is off by millimetres, and
                # a cell taken high between two fingertips slips out of them)
                site += w * (at - grasp_site)
            else:
                # from the other hand: the robot's own approach (the person's hand, hidden where
                # the hands meet, is read worst there): over the grasp, waiting there (the clock
                # stops) until the hand is, then straight down onto it
                mid = a - self.approach // 2
                above = at + [0.0, 0.0, APPROACH_ABOVE]
                if t < mid:
                    site = site + w * (above - site)
                else:  # ... turned to the object's own grasp, not the person's hidden hand's
                    site = above + min(1.0, (t - mid) / max(a - mid, 1)) * (at - above)
                    dyaw = float(plan.yaw[a]) + turn - yaw
                if t == mid:
                    here = self.ik[side].site_pose(np.asarray(obs["proprio"][: robot.N_ACTUATORS]))[0]
                    self.wait_approach |= bool(np.linalg.norm(here - above) > RELEASE_TOLERANCE and self.waited < self.max_wait)
            was = self.holding.get(side)
            # where the object was when the fingers closed on it: the carry follows the person's hand
            # from there (the hand may lift while it settles; counted from there, that lift counts twice)
            start = was["start"] if was is not None and was["span"] == span and t > a else objects[k].copy()
            if t >= a and OBJECTS[k] != "part":
                yaw = float(plan.yaw[a])  # closing on a cell: the hand does not turn (see the carry)
            self.holding[side] = {"side": side, "span": span, "object": k, "start": start, "site_a": grasp_site.copy(),
                                  "dyaw": dyaw, "moved": np.zeros(3) if held_at is None else at - grasp_site,
                                  "from_other": held_at is not None}
            return site, yaw + dyaw, closed
        h = self.holding.get(side)
        if h is None:  # a grasp whose approach was passed over (the hand held something at the pass)
            return self._rising(side) or (site, yaw, False)
        k = h["object"]
        if OBJECTS[k] != "part":  # a round cell: the hand keeps the yaw it closed with (a person's
            # wrist turns as it lifts and carries; any yaw holds a cell, and turning it with the cell
            # pinched between two fingertips works the cell out of them)
            yaw = float(plan.yaw[a])
        yaw += h["dyaw"]  # the hand keeps the turn it took to meet the object
        if "offset" not in h:  # how the robot holds it: object minus its own grasp site, measured
            grip = self.ik[side].site_pose(np.asarray(obs["proprio"][: robot.N_ACTUATORS]))[0]
            h["offset"] = objects[k] - grip
            h["yaw_t"] = yaw
            h["place"] = self._place_for(h, a, b)
            h["last"] = (grip, yaw)
        if self._other_holds(side, k) or self._other_letting_go(side):
            # both hands on it: neither moves (nor turns it) until the one that gives it has let go
            # (where its opening is seen late, the person's taking hand is already moving off)
            return h["last"][0], h["last"][1], closed
        # the object follows the person's hand's path from where it was grasped
        # (where the pass moved the grasp from the person's, that move is taken back over the first
        # half of the carry: the object is let go where the person let it go)
        wanted = h["start"] + (plan.site[t] - h["site_a"]) - self._moved_back(h, t, a, b)
        if OBJECTS[k] != "part":  # ... a cell no higher than it needs to clear the bins (MAX_CELL_LIFT)
            wanted[2] = min(wanted[2], h["start"][2] + MAX_CELL_LIFT)
        if h["place"] is not None:  # ... bent into the place the person let go at
            place, (release, shift) = h["place"]
            d = np.linalg.norm(wanted[:2] - release[:2])
            w = float(np.clip((SNAP_FADE - d) / (SNAP_FADE - SNAP_FULL), 0.0, 1.0))
            wanted[:2] += w * shift
            if place.z is not None:
                wanted[2] += w * (place.z - release[2])
            if not place.support and (w == 1.0 or "passing" in h):
                # at the pass the object stays until the other hand has it: where the person's hand
                # moves off before it is seen to open, it had let go (its opening is seen late)
                h["passing"] = True
                wanted = np.r_[release[:2] + shift, place.z if place.z is not None else wanted[2]]
            # servo on what the robot measures of the object: its yaw onto the place's, and over
            # a small place its position (the arm sags under load; the object may have turned in the grip)
            turn = place.turn(quat_yaw(poses[k, 3:]))
            h["turn"] = float(np.clip(h.get("turn", 0.0) + PLACE_GAIN * w * turn, -0.5, 0.5))
            if w == 1.0 and place.support and place.half <= SERVO_HALF:  # a small place (the socket, the
                # tray's mark; not a bin): servo in, as the object may have slipped or turned in the grip
                h["bias"] = np.clip(h.get("bias", 0.0) + PLACE_GAIN * (wanted[:2] - objects[k, :2]), -0.02, 0.02)
        if "passing" in h:  # at the pass the hand holds the object still for the other to take: the
            yaw = h.setdefault("pass_yaw", yaw)  # person's hand there, hidden by the other, is read worst
        yaw += h.get("turn", 0.0)
        c, s = np.cos(yaw - h["yaw_t"]), np.sin(yaw - h["yaw_t"])
        offset = np.array([c * h["offset"][0] - s * h["offset"][1], s * h["offset"][0] + c * h["offset"][1], h["offset"][2]])
        site = wanted - offset
        site[:2] += h.get("bias", 0.0)
        if "last" in h:  # a person snatches; a robot carries no faster than CARRY_SPEED (the hold is firm)
            step = site - h["last"][0]
            site = h["last"][0] + step * min(1.0, CARRY_SPEED * CONTROL_DT / max(float(np.linalg.norm(step)), 1e-9))
        h["last"] = (site, yaw)
        return site, yaw, closed

    def _rising(self, side: str) -> tuple[np.ndarray, float, bool] | None:
        """Just let go: the hand stays while it opens, then rises clear (its target), else None.
        A hand that has handed its object over, with nothing more to take, then goes back to its
        rest, away from the other hand: the person's, seen there amid the other glove, is read
        worst, and followed it sweeps through the object the other hand now carries off."""
        if side not in self.released:
            return None
        gone = self.released[side]
        rise = float(np.clip((self.step - gone.step - self.settle) / self.settle, 0.0, 1.0))
        risen = gone.site + [0.0, 0.0, APPROACH_ABOVE * rise]
        if self.step - gone.step < 2 * self.settle:
            return risen, gone.yaw, False
        if not gone.passed or any(a - self.approach > self.t for a, _ in self.spans[side]):
            return None
        home = np.asarray(robot.HOME_HAND_POS[side], float)
        away = float(np.linalg.norm(home - risen))
        w = min(1.0, (self.step - gone.step - 2 * self.settle) * CARRY_SPEED * CONTROL_DT / max(away, 1e-9))
        return risen + w * (home - risen), (1 - w) * gone.yaw, False

    def _moved_back(self, h: dict, t: int, a: int, b: int) -> np.ndarray:
        carry = max(b - a - self.settle, 1)
        return h["moved"] * float(np.clip((t - a - self.settle) / (0.5 * carry), 0.0, 1.0))

    def _other_letting_go(self, side: str) -> bool:
        """Whether the other hand, its part of the demonstration done, still holds (waiting for this
        one to have it) or is letting go of the object this hand has taken."""
        mine = self.holding.get(side)
        if mine is None or "offset" not in mine:
            return False
        other = SIDES[1 - SIDES.index(side)]
        theirs = self.holding.get(other)
        if theirs is not None and theirs["object"] == mine["object"] and theirs.get("deferred", 0) > 0:
            return True
        # ... and until it has let go and risen clear (its fingers open to LET_GO, then it rises):
        # carried off sooner, the object is pulled from fingers still on it, or meets them
        gone = self.released.get(other)
        return gone is not None and gone.object == mine["object"] and self.step - gone.step < 2 * self.settle

    def _other_still_to_take(self, side: str, t: int) -> bool:
        """Whether the other hand's next grasp is still to come (or still closing) at plan step ``t``:
        where a person's taking hand is seen to close late (its tips hidden behind the other
        hand), the hand that gives keeps hold until it has closed, however late that is."""
        other = SIDES[1 - SIDES.index(side)]
        return any(a <= t + self.max_defer and t < a + self.settle for a, _ in self.spans[other])

    def _other_holds(self, side: str, k: int) -> bool:
        """Whether the other hand has closed on object ``k`` (and settled)."""
        other = self.holding.get(SIDES[1 - SIDES.index(side)])
        return other is not None and other["object"] == k and "offset" in other

    def _place_for(self, h: dict, a: int, b: int):
        """(place, (release point, shift into it)) for the release that ends grasp [a, b), or None
        where the person let go away from every place. Where they let go in mid-air away from
        every place, but carried the object through the pass on the way, it was passed there (the
        hand that gives moves off once the other has it, before it is seen to open). Where, within
        ``LATE_RELEASE_S`` before a cell was seen let go, the hand came down over a bin (the one it
        let go at, or any where it let go away from every place) lower than it let go, it let go
        there: the grasp is cut short (``self.plans`` are the replay's own copies)."""
        path = h["start"] + (self.plans[h["side"]].site[a:b] - h["site_a"]) - h["moved"]
        best = self._nearest_place(path[-1], self.places)
        # where the hand had come down over a bin shortly before and was lifting away when it was
        # seen to open (the fingertips hidden by the bin's walls: seen late), it let go the cell at the
        # lowest point of its path there, and the grasp ends there
        bins = [p for p in self.places if p.walls] if best is None else [best[0]] if best[0].walls else []
        late = range(max(self.settle + 1, len(path) - int(round(LATE_RELEASE_S / CONTROL_DT))), len(path))
        over = {i: at for i in late if (at := self._nearest_place(path[i], bins)) is not None}
        if over and OBJECTS[h["object"]] != "part":
            i = min(over, key=lambda i: path[i, 2])
            if best is None or path[-1, 2] - path[i, 2] > LATE_RELEASE_DROP:
                best = over[i]
                side = h["side"]
                self.plans[side].closed[a + i + 1 : b] = False
                self.spans[side] = self.plans[side].grasps()
        if best is None and not h["moved"].any():  # (not for a hand that took it at the pass)
            passes = [p for p in self.places if not p.support]
            near = [(np.linalg.norm(path[:, :2] - np.asarray(p.centre), axis=1), p) for p in passes]
            for d, place in sorted(near, key=lambda e: float(e[0].min())):
                best = self._nearest_place(path[int(np.argmin(d))], [place])
                if best is not None:
                    break
        return best

    @staticmethod
    def _nearest_place(release: np.ndarray, places: list[Place]):
        """(place, (release, shift into it)) for the place nearest ``release`` within its reach, or None."""
        best = None
        for place in places:
            inside = place.snap(release[:2])
            if inside is not None and (best is None or np.linalg.norm(inside - release[:2]) < best[2]):
                best = (place, inside - release[:2], float(np.linalg.norm(inside - release[:2])))
        return None if best is None else (best[0], (release, best[1]))

    def act(self, obs: dict) -> np.ndarray:
        max_step = MAX_JOINT_SPEED * CONTROL_DT
        err = np.zeros(len(SIDES))
        measured = np.asarray(obs["proprio"][: robot.N_ACTUATORS])
        hold_clock = False
        self.wait_approach = False
        for h, side in enumerate(SIDES):
            if not self.spans[side]:
                # a hand that takes nothing in the episode has no part in the task: its arm stays
                # at home (following the person's idle hand, it would jitter with every keypoint's
                # noise: actions a policy learns as noise, and an arm in the way for nothing)
                continue
            site, yaw, closed = self._target(side, obs)
            plan, t = self.plans[side], min(self.t, len(self.plans[side].site) - 1)
            releasing = closed and t + 1 < len(plan.closed) and not plan.closed[t + 1]
            grasping = not closed and t + 1 < len(plan.closed) and plan.closed[t + 1] and not plan.closed[t]
            if (releasing or grasping) and self.waited < self.max_wait:
                # close, or let go, only where the person did: wait while the arm catches up (to
                # within a few millimetres for a grasp: fingers that close on a hand still moving
                # push the object along)
                here = self.ik[side].site_pose(measured)[0]
                lag = np.linalg.norm(here - site)
                hold_clock |= lag > (GRASP_TOLERANCE if grasping else RELEASE_TOLERANCE)
                if grasping:  # ... and has come to rest there
                    hold_clock |= np.linalg.norm(here - self.last_here.get(side, here + 1.0)) > GRASP_TOLERANCE / 5
                self.last_here[side] = here
            if closed and self.waited < self.max_wait:
                # carry nothing off that the other hand has not let go of yet
                hold_clock |= self._other_letting_go(side)
                # nor before the fingers have shut on it: a person's hand closes as it lifts, the
                # robot's fingers take FINGER_STEPs; lifted half-closed, a cell tips out of them
                hold_clock |= self.closure[side] < robot.FINGER_CLOSED - 1e-9 and any(a == t for a, _ in self.spans[side])
            ik = self.ik[side]
            best = None
            # never turned round with something in hand, nor while closing in on it
            open_hand, closing_in = self.closure[side] == 0, self._grasp_at(side, t) is not None
            flips = (self.flip[side], np.pi - self.flip[side]) if open_hand and not closing_in else (self.flip[side],)
            seed = self.q
            if side in self.posture and open_hand and closing_in:
                seed = self.q.copy()  # closing in: on the grasp's posture, not the one the path left the arm in
                seed[ik.index] = self.posture[side]
            for flip in flips:
                sol, e = ik.solve(seed, site, yaw_down_quat(yaw + flip), iterations=10, free_limits=self.free[side])
                if best is None or e < best[1] - 0.005:
                    best = (sol, e, flip)
            if best[1] > 0.01:  # stuck in a poor posture: solve again from the arm's home posture,
                # and, for an arm taking an object from the other hand, with a joint held at its stop
                # left out of the step (the wrist at a stop can stall the plain solve a centimetre
                # short of a pose it reaches); once that is needed, the arm keeps to it (solved
                # plainly from there, it stalls again: it shakes). Not elsewhere: sorting's arms
                # stall short often enough that it changed their paths, and lost cells
                # (docs/watch.md)
                at_pass = (self.holding.get(side) or {}).get("from_other", False)  # taking it from the other hand
                for q0, free in ((self.home, False), (seed, True), (self.home, True))[: 3 if at_pass else 1]:
                    sol, e = ik.solve(q0, site, yaw_down_quat(yaw + best[2]), iterations=30, free_limits=free)
                    if e < best[1] - 0.005:
                        best = (sol, e, best[2])
                        self.free[side] |= free
            sol, err[h], self.flip[side] = best
            prev = self.q[ik.index]
            step = sol - prev  # scaled as a whole, not clipped per joint: the hand keeps its line
            self.q[ik.index] = prev + step * min(1.0, max_step / max(float(np.abs(step).max()), 1e-9))
            target = robot.FINGER_CLOSED if closed else 0.0
            if not closed and side in self.released and self.step - self.released[side].step < self.settle:
                target = LET_GO  # let go gently: fingers thrown wide flick a light cell out of its bin
            self.closure[side] += float(np.clip(target - self.closure[side], -FINGER_STEP, FINGER_STEP))
            self.q[self.fingers[side]] = self.closure[side]
        self.errors.append(err)
        if hold_clock or self.wait_approach:
            self.waited += 1
        else:
            self.t += 1
            self.waited = 0
        self.step += 1
        return self.q.copy()
