"""The parts of watching that make a person's demonstration the robot's: telling the two alike
gloves apart where the hands meet, timing a grasp the fingertips hid, the grasps an object
affords, and the places of the workcell an object is let go in."""

import numpy as np

from academy.human.body import MARKER_SITES, SIDES
from academy.sim.env import WorkcellEnv
from academy.sim.world import OBJECTS, yaw_quat
from academy.watch.keypoints import hand_shape_gate, settle_hand_identity
from academy.watch.retarget import (
    PART_END_GRASP,
    HandPlan,
    ObjectCentricReplay,
    Place,
    hand_tracks,
    object_grasp,
    workcell_places,
)

NAMES = tuple(f"{s}_{m}" for s in SIDES for m in MARKER_SITES)
FPS = 30


def _hands(T: int, right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """(T, 8, 3) markers of two hands whose knuckles are at ``right`` and ``left`` (T, 3)."""
    offsets = {"wrist": [-0.06, 0, 0.02], "knuckle": [0, 0, 0], "thumb_tip": [0.04, -0.03, -0.02],
               "index_tip": [0.05, 0.03, -0.02]}
    pts = np.zeros((T, len(NAMES), 3))
    for i, name in enumerate(NAMES):
        side, role = name.split("_", 1)
        pts[:, i] = (right if side == "right" else left) + offsets[role]
    return pts


def _pinching(pts: np.ndarray, gap: np.ndarray, wander: np.ndarray | float = 0.0) -> np.ndarray:
    """``pts`` with the right hand's thumb and index tips ``gap`` (T,) apart along y about their
    midpoint, the midpoint moved by ``wander`` (T, 3)."""
    ti, ii = NAMES.index("right_thumb_tip"), NAMES.index("right_index_tip")
    centre = (pts[:, ti] + pts[:, ii]) / 2 + wander
    half = np.c_[np.zeros(len(gap)), gap / 2, np.zeros(len(gap))]
    pts[:, ti], pts[:, ii] = centre - half, centre + half
    return pts


def _handover_5000(tmp_path) -> tuple[dict, tuple[int, int], tuple[int, int]]:
    """A person's handover of scene 5000 (ground truth, no video): the hand plans, the right
    hand's carry to the pass and the left hand's grasp, as [start, end) plan steps."""
    from academy.human.record import record
    from academy.watch.keypoints import truth_keypoints
    from academy.watch.pipeline import episode_plans
    from academy.watch.segment import active_spans

    rec = record(tmp_path / "handover-005000", "handover", [5000], person_seed=1000, render=False)
    kp = truth_keypoints(rec)
    plans, reason = episode_plans(kp, active_spans(kp.points, kp.fps)[0])
    assert not reason
    carry, = [s for s in plans["right"].grasps() if s[1] - s[0] > 20]  # the carry to the pass
    take, = plans["left"].grasps()
    return plans, carry, take


def test_a_marker_from_the_other_glove_is_dropped():
    T = 5
    pts = _hands(T, np.tile([0.3, -0.2, 1.0], (T, 1)), np.tile([0.3, 0.2, 1.0], (T, 1)))
    wrong = pts.copy()
    wrong[2, NAMES.index("right_index_tip")] = pts[2, NAMES.index("left_index_tip")]  # taken from the left hand
    out = hand_shape_gate(wrong, NAMES)
    assert np.isnan(out[2, NAMES.index("right_index_tip")]).all()
    assert np.isfinite(np.delete(out, NAMES.index("right_index_tip"), axis=1)).all()
    assert np.allclose(np.nan_to_num(out[[0, 1, 3, 4]]), pts[[0, 1, 3, 4]])  # the other frames untouched


def test_hands_swapped_where_they_met_are_swapped_back():
    T = 90
    s = np.r_[np.linspace(0, 1, 30), np.ones(30), np.linspace(1, 0, 30)][:, None]
    right = np.array([0.3, -0.25, 1.0]) + s * [0.05, 0.22, 0.0]  # the hands meet mid-take (3 cm apart)
    left = np.array([0.3, 0.25, 1.0]) + s * [0.05, -0.22, 0.0]
    pts = _hands(T, right, left)
    swapped = pts.copy()
    r = [NAMES.index(f"right_{m}") for m in MARKER_SITES]
    l = [NAMES.index(f"left_{m}") for m in MARKER_SITES]
    swapped[45:, r], swapped[45:, l] = pts[45:, l], pts[45:, r]  # the tracker mixed them up at the meeting
    out = settle_hand_identity(swapped, NAMES)
    assert np.allclose(out[70:], pts[70:])  # after the meeting each hand is itself again
    assert np.allclose(settle_hand_identity(pts, NAMES), pts)  # nothing to mend: nothing changed


def test_hands_that_trade_places_far_apart_are_swapped_back():
    # held-out sort_cells-005000: a stray point taken for the left knuckle beside the right hand
    # led the tracking to swap the gloves 54 cm apart, for 29 s; the hands never met, so no
    # meeting cut the take there, and the stretch's side of the body was never looked at
    T = 120
    sweep = np.sin(np.linspace(0, 3 * np.pi, T))[:, None]
    right = np.array([0.35, -0.25, 1.0]) + sweep * [0.05, 0.1, 0.0]  # each hand sorting on its own side
    left = np.array([0.35, 0.25, 1.0]) - sweep * [0.05, 0.1, 0.0]
    pts = _hands(T, right, left)
    swapped = pts.copy()
    r = [NAMES.index(f"right_{m}") for m in MARKER_SITES]
    l = [NAMES.index(f"left_{m}") for m in MARKER_SITES]
    swapped[40:90, r], swapped[40:90, l] = pts[40:90, l], pts[40:90, r]
    swapped[39, NAMES.index("left_knuckle")] = pts[39, NAMES.index("right_knuckle")] + 0.03  # the stray
    swapped[60:63, l] = np.nan  # a hand unseen for a moment on the way
    out = settle_hand_identity(swapped, NAMES)
    keep = np.isfinite(swapped).all(-1).all(-1) & (np.arange(T) != 39)
    assert np.allclose(out[keep], pts[keep])


def test_a_grasp_the_fingertips_hid_is_timed_at_the_pause():
    # the hand travels, stops (0.8 s), then travels on; its tips are hidden from 0.5 s to 3 s:
    # open before, closed after. It closed while it stood still, not when the tips came back.
    T = 120
    x = np.r_[np.linspace(0, 0.2, 40), np.full(25, 0.2), np.linspace(0.2, 0.4, 55)]
    pts = _hands(T, np.c_[0.3 + x, np.full(T, -0.2), np.full(T, 1.0)], np.tile([0.3, 0.25, 1.0], (T, 1)))
    ti, ii = NAMES.index("right_thumb_tip"), NAMES.index("right_index_tip")
    pts = _pinching(pts, np.where(np.arange(T) < 52, 0.09, 0.05))
    observed = np.ones((T, len(NAMES)), bool)
    observed[15:90, [ti, ii]] = False
    closed = hand_tracks(pts, NAMES, observed, FPS)["right"].closed
    edge = int(np.flatnonzero(closed)[0])
    assert 40 <= edge <= 66, edge  # within the pause (frames 40-65), not at frame 90
    assert closed[edge:].all() and not closed[:edge].any()


def test_the_grasps_an_object_affords():
    part = OBJECTS.index("part")
    # a standing part turned 20 degrees: taken at its centre, the hand turned onto a face
    standing = np.r_[0.35, -0.1, 0.955, yaw_quat(np.deg2rad(20))]
    at, turn = object_grasp("part", standing, np.array([0.352, -0.098]), np.deg2rad(12))
    assert np.allclose(at[:2], standing[:2]) and np.isclose(turn, np.deg2rad(8))
    # a lying part (long axis along y): across it, near the end the person took, or the end away
    # from the other hand
    from academy.sim.tasks.handover import lying_quat

    lying = np.r_[0.35, 0.0, 1.0, lying_quat(0.0)]
    at, turn = object_grasp("part", lying, np.array([0.36, 0.02]), np.deg2rad(80))
    assert np.allclose(at[:2], [0.35, PART_END_GRASP], atol=1e-6)
    assert np.isclose(abs(turn), np.deg2rad(10), atol=1e-6)
    at, _ = object_grasp("part", lying, np.array([0.36, 0.02]), 0.0, held_at=np.array([0.35, 0.03, 1.03]))
    assert at[1] < 0  # the other hand holds the +y end
    # a round cell: its centre, any yaw
    at, turn = object_grasp(OBJECTS[0], np.r_[0.4, 0.1, 0.93, 1, 0, 0, 0], np.array([0.41, 0.1]), 0.3)
    assert np.allclose(at[:2], [0.4, 0.1]) and turn is None
    assert part == len(OBJECTS) - 1


def test_workcell_places_take_a_release_near_them_and_only_then():
    env = WorkcellEnv("handover")
    env.reset(3)
    places = workcell_places(env.world, env.goal)
    target = np.asarray(env.goal["target"])
    tray = [p for p in places if np.allclose(p.centre, target)]
    assert len(tray) == 1 and tray[0].support
    assert np.linalg.norm(tray[0].snap(target + [0.03, 0.0]) - target) <= tray[0].half * np.sqrt(2) + 1e-9
    assert tray[0].snap(target + [0.2, 0.0]) is None  # let go elsewhere: no place meant
    socket = Place((0.32, -0.30), 0.0, yaw=0.0)
    assert np.allclose(socket.snap(np.array([0.33, -0.29])), [0.32, -0.30])
    assert np.isclose(socket.turn(np.deg2rad(95)), np.deg2rad(-5))  # a square fits every quarter turn
    assert any(not p.support for p in places)  # the pass between the hands, in mid-air


def test_an_object_carried_through_the_pass_and_off_was_passed_there():
    """The giving hand moves off once the other hand has the object, before it is seen to open:
    a release in mid-air away from every place, on a path through the pass, is the pass."""
    env = WorkcellEnv("handover")
    env.reset(3)
    places = workcell_places(env.world, env.goal)
    T = 60
    through = np.r_[np.linspace([0.30, -0.12, 1.00], [0.35, 0.0, 1.00], 30), np.linspace([0.35, 0.0, 1.00], [0.33, -0.25, 1.25], 30)]
    away = np.linspace([0.30, -0.12, 1.00], [0.20, -0.30, 1.20], T)  # never near the pass
    for path, passed in ((through, True), (away, False)):
        plan = HandPlan(path, np.zeros(T), np.ones(T, bool))
        replay = ObjectCentricReplay({"right": plan, "left": HandPlan(path * 0 + [0.3, 0.3, 1.0], np.zeros(T), np.zeros(T, bool))},
                                     places=places)
        h = {"side": "right", "start": path[0].copy(), "site_a": path[0].copy(), "moved": np.zeros(3)}
        found = replay._place_for(h, 0, T)
        if not passed:
            assert found is None
            continue
        place, (release, shift) = found
        assert not place.support  # the pass, in mid-air
        assert np.linalg.norm(release[:2] + shift - np.asarray(place.centre)) <= place.half * np.sqrt(2) + 1e-9
        assert np.linalg.norm(release[:2] - [0.35, 0.0]) < 0.01  # where the path met it, not where it ended


def test_a_persons_handover_replays_from_their_true_motion(tmp_path):
    """Perception taken out (ground-truth keypoints, no video): the pipeline's own grasps,
    retargeting and replay in physics hand the part over, the taking arm reaching its grasp at the
    pass from the posture that grasp needs (chosen before it closes in, not the one the person's
    path left it in)."""
    from academy.human.record import record
    from academy.watch.keypoints import truth_keypoints
    from academy.watch.pipeline import watch

    rec = record(tmp_path / "handover-005000", "handover", [5000, 5002], person_seed=1000, render=False)
    assert not (rec / "videos").exists()
    report = watch(rec, tmp_path / "out", keypoints_of=truth_keypoints)
    assert [(e.seed, e.outcome) for e in report.episodes] == [(5000, "success"), (5002, "success")]


def test_a_handover_seen_late_and_early_still_passes_the_part(tmp_path):
    """Where the hands meet, the taking hand's close is seen late (its tips hidden behind the part
    and the other glove: 0-3.5 s on the rendered footage) and the giving hand's opening early or
    late: the giving hand keeps hold at the pass until the other has closed, and does not take the
    part back; the taking hand stays where it closed until the other has let go, though the
    person's hand was moving off."""
    from academy.sim.rollout_expert import rollout

    plans, (ra, rb), (la, lb) = _handover_5000(tmp_path)
    assert ra < la < rb < lb  # the person's left hand closed before the right let go
    plans["left"].closed[la : la + 40] = False  # the taking hand seen closing 2 s late, moving off ...
    plans["right"].closed[rb - 8 : rb] = False  # ... the giving hand seen opening 0.4 s early ...
    plans["right"].closed[rb + 5 : rb + 25] = True  # ... and closing again (the other glove's tips)
    env = WorkcellEnv("handover")
    env.reset(5000)
    agent = ObjectCentricReplay(plans, places=workcell_places(env.world, env.goal))
    assert rollout(env, agent, 5000).success


def test_a_hidden_grasp_is_timed_as_the_wrist_comes_to_rest():
    # the taking hand arrives (frame 40), waits 2 s holding the part while the other lets go,
    # then carries it off; its tips are hidden from frame 35 to 110, and where they are placed
    # from the rest of the hand (mixed with the other glove) they wander by 2 cm: the pinch is
    # never still, the wrist is. It closed as it came to rest, not when the tips came back.
    T = 150
    x = np.r_[np.linspace(0, 0.2, 40), np.full(60, 0.2), np.linspace(0.2, 0.4, 50)]
    pts = _hands(T, np.c_[0.3 + x, np.full(T, -0.2), np.full(T, 1.0)], np.tile([0.3, 0.25, 1.0], (T, 1)))
    ti, ii = NAMES.index("right_thumb_tip"), NAMES.index("right_index_tip")
    wander = np.zeros((T, 3))
    wander[35:110] = 0.02 * np.c_[np.sin(np.arange(75) / 2), np.cos(np.arange(75) / 3), np.zeros(75)]
    pts = _pinching(pts, np.where(np.arange(T) < 45, 0.09, 0.05), wander)
    observed = np.ones((T, len(NAMES)), bool)
    observed[35:110, [ti, ii]] = False
    closed = hand_tracks(pts, NAMES, observed, FPS)["right"].closed
    edge = int(np.flatnonzero(closed)[0])
    assert 36 <= edge <= 50, edge  # the wrist stopped at frame 40
    assert closed[edge:].all() and not closed[:edge].any()


def test_a_glimpse_or_a_flicker_of_an_open_hand_is_not_a_release():
    # the hand closes at frame 30 and opens at frame 120; its tips are hidden from 50 to 90 but for
    # two frames (70, 71) in which the other glove's tips pass for its own (wide open), and seen open
    # for 4 frames (0.13 s) at 100: neither is a release and a regrasp (a person opens 0.5 s or more)
    T = 150
    pts = _hands(T, np.tile([0.4, -0.1, 1.0], (T, 1)), np.tile([0.3, 0.25, 1.0], (T, 1)))
    ti, ii = NAMES.index("right_thumb_tip"), NAMES.index("right_index_tip")
    gap = np.where((np.arange(T) >= 30) & (np.arange(T) < 120), 0.05, 0.09)
    gap[[70, 71]] = 0.11
    gap[100:104] = 0.09
    pts = _pinching(pts, gap)
    observed = np.ones((T, len(NAMES)), bool)
    observed[50:90, [ti, ii]] = False
    observed[[70, 71], ti] = observed[[70, 71], ii] = True
    closed = hand_tracks(pts, NAMES, observed, FPS)["right"].closed
    assert closed[32:118].all() and not closed[:28].any() and not closed[122:].any()


def test_tips_from_the_other_glove_do_not_turn_the_hand():
    # the right hand's tips lie along y (yaw 0) throughout; for 7 frames where the hands meet both
    # are "seen" half a metre apart along x: the other glove's tips (or a mismatch), which the
    # aperture already refuses; the yaw refuses them too (before, they turned the hand by ~90 deg)
    T = 120
    pts = _pinching(_hands(T, np.tile([0.4, -0.1, 1.0], (T, 1)), np.tile([0.3, 0.25, 1.0], (T, 1))),
                    np.full(T, 0.05))
    ti, ii = NAMES.index("right_thumb_tip"), NAMES.index("right_index_tip")
    centre = (pts[60:67, ti] + pts[60:67, ii]) / 2
    pts[60:67, ti], pts[60:67, ii] = centre - [0.25, 0, 0], centre + [0.25, 0, 0]
    yaw = hand_tracks(pts, NAMES, np.ones((T, len(NAMES)), bool), FPS)["right"].yaw
    assert np.abs(yaw).max() < 0.05, np.abs(yaw).max()


def test_a_pass_read_turning_and_a_giving_hand_read_sweeping_back(tmp_path):
    """Where the hands meet the giving hand is read worst: its yaw turning by a radian while it
    holds the part at the pass, and once it has let go, its path crossing back over the pass. The
    robot holds the part still at the pass (before: turned 0.7-0.8 rad with the hand), and the
    hand that gave it goes back to its rest (before: it followed the path, 13 cm from its rest)."""
    from academy.sim import robot
    from academy.sim.world import quat_yaw

    plans, (ra, rb), (la, lb) = _handover_5000(tmp_path)
    right = plans["right"]
    right.yaw[la - 20 : rb] += np.linspace(0.0, 1.0, rb - la + 20)  # turning as the other hand takes it
    right.yaw[rb:] += 1.0
    n = min(40, len(right.site) - rb)
    right.site[rb : rb + n, :2] += np.linspace(0.0, 1.0, n)[:, None] * [0.06, 0.12]  # back across the pass
    right.site[rb + n :, :2] += [0.06, 0.12]
    env = WorkcellEnv("handover")
    obs, _ = env.reset(5000)
    agent = ObjectCentricReplay(plans, places=workcell_places(env.world, env.goal))
    agent.reset(obs)
    k, in_air = OBJECTS.index("part"), []
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        if obs["objects"][k][2] > 0.95:
            in_air.append(quat_yaw(obs["objects"][k][3:]))
        if terminated or truncated:
            break
    assert info["success"]
    assert np.abs(in_air).max() < 0.3, np.abs(in_air).max()
    site = agent.ik["right"].site_pose(np.asarray(obs["proprio"][: robot.N_ACTUATORS]))[0]
    assert np.linalg.norm(site - robot.HOME_HAND_POS["right"]) < 0.02


def test_an_arm_whose_wrist_is_at_its_stop_still_reaches_the_grasp():
    # where the taking arm came to the pass in footage (6108), its wrist at a stop, the plain IK
    # step stalls 13 mm short of its grasp of the part's end, and from home too; with that joint
    # left out of the step the arm reaches it (0.3 mm), and keeps to that solve. Only an arm taking
    # an object from the other hand does so (elsewhere it changed sorting's paths and lost cells)
    from academy.sim import robot

    env = WorkcellEnv("handover")
    obs, _ = env.reset(5000)
    T, site, yaw = 40, np.array([0.3549, 0.03, 1.0735]), 1.5674
    stalled = [-0.6143, 0.2758, -0.7425, -1.8168, 1.5811, 2.2338, 0.7444]
    targets = {"right": (np.array(robot.HOME_HAND_POS["right"]), 0.0, False), "left": (site, yaw, False)}
    errors = {}
    for taking in (True, False):
        plans = {side: HandPlan(np.tile(targets[side][0], (T, 1)), np.full(T, targets[side][1]),
                                (np.arange(T) >= 20) & (side == "left"))  # the left hand closes later
                 for side in SIDES}
        agent = ObjectCentricReplay(plans)
        agent.reset(obs)
        agent._target = lambda side, obs: targets[side]  # the grasp at the pass, as _target gives it
        agent.holding["left"] = {"from_other": taking}
        agent.q[agent.ik["left"].index] = stalled
        agent.flip["left"] = np.pi
        for _ in range(3):
            agent.act(obs)
        errors[taking] = [e[1] for e in agent.errors]
    assert max(errors[True]) < 0.002, errors
    assert max(errors[False]) > 0.01, errors  # a sorting arm keeps the plain solve, which stalls at times


def _sorting_7003(tmp_path) -> dict:
    """A person's sorting of scene 7003 (person 3000, ground truth, no video): the hand plans."""
    from academy.human.record import record
    from academy.watch.keypoints import truth_keypoints
    from academy.watch.pipeline import episode_plans
    from academy.watch.segment import active_spans

    rec = record(tmp_path / "sort_cells-007000", "sort_cells", list(range(7000, 7005)), person_seed=3000,
                 render=False)
    kp = truth_keypoints(rec)
    plans, reason = episode_plans(kp, active_spans(kp.points, kp.fps)[3])
    assert not reason
    return plans


def test_a_release_seen_late_over_a_bin_lets_go_where_the_hand_came_down(tmp_path):
    # over a bin the fingertips hide behind its walls as the hand opens, and the opening is seen
    # 0.4-1 s late, the hand already lifting away (held-out sort_cells-005000: the cells let go 9 cm
    # off their bins). Every release of this sorting seen 0.8 s late: each cell still reaches its bin
    from academy.sim.rollout_expert import rollout

    plans = _sorting_7003(tmp_path)
    for plan in plans.values():
        for a, b in plan.grasps():
            plan.closed[b : b + 16] = True
    env = WorkcellEnv("sort_cells")
    env.reset(7003)
    agent = ObjectCentricReplay(plans, places=workcell_places(env.world, env.goal))
    assert rollout(env, agent, 7003).success


def test_a_cell_lifted_high_is_carried_low_enough_to_stay_in_the_grip(tmp_path):
    # a person lifts a light cell up to 19 cm on its way to the bin; held level that high, the
    # robot's arm stalls and tilts the hand, and the cell works its way out of the fingertips
    # (the third cell of scene 7003 fell off the bench, person 3000, ground truth). Carried no
    # higher than MAX_CELL_LIFT above where it was taken, every cell reaches its bin
    from academy.sim.rollout_expert import rollout
    from academy.watch.retarget import MAX_CELL_LIFT

    plans = _sorting_7003(tmp_path)
    lifts = [p.site[a:b, 2].max() - p.site[a, 2] for p in plans.values() for a, b in p.grasps()]
    assert max(lifts) > MAX_CELL_LIFT + 0.04  # the person lifted the cells well above the cap
    env = WorkcellEnv("sort_cells")
    env.reset(7003)
    agent = ObjectCentricReplay(plans, places=workcell_places(env.world, env.goal))
    heights = []
    step = env.step

    def stepped(action):
        out = step(action)
        heights.append(np.asarray(out[0]["objects"])[:3, 2].max())
        return out

    env.step = stepped
    assert rollout(env, agent, 7003).success
    assert max(heights) < heights[0] + MAX_CELL_LIFT + 0.01
