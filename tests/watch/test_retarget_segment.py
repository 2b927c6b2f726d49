"""Segmentation into episodes, and retargeting hand paths onto the robot."""

import numpy as np

from academy.sim import robot
from academy.sim.experts.ik import ArmIK
from academy.sim.experts.sort_cells import GRASP_ABOVE_CENTRE
from academy.sim.world import load_model, quat_yaw
from academy.watch.retarget import GRASP_TOLERANCE, MAX_JOINT_SPEED, HandPlan, HandTrack, ObjectCentricReplay, hand_tracks, plan_hands
from academy.watch.segment import active_spans, episode_spans

FPS = 30


def _moves(segments, T):
    pts = np.zeros((T, 2, 3))
    for a, b in segments:
        s = np.linspace(0, 1, b - a)
        pts[a:b, 0, 0] = 0.3 * np.sin(np.pi * s) ** 2
    return pts


def test_active_spans_split_on_idle_and_keep_short_pauses():
    # two episodes separated by 2.5 s at rest; the first has a 0.8 s pause inside; 3 mm jitter throughout
    pts = _moves([(15, 75), (99, 150), (225, 330)], 400)
    pts += np.random.default_rng(0).normal(0, 0.003, pts.shape)
    spans = active_spans(pts, FPS)
    assert len(spans) == 2, spans
    assert spans[0][0] <= 20 and spans[0][1] >= 145 and spans[1][0] <= 230 and spans[1][1] >= 325
    assert active_spans(np.random.default_rng(1).normal(0, 0.003, (200, 2, 3)), FPS) == []


def test_a_short_rest_between_listed_episodes_is_cut_and_a_pause_kept():
    # the recorder's shortest rest (1.5 s) between two episodes, the first with a 0.8 s pause inside
    pts = _moves([(15, 75), (99, 150), (195, 300)], 360)
    pts += np.random.default_rng(0).normal(0, 0.003, pts.shape)
    assert len(active_spans(pts, FPS)) == 1  # the default 1.7 s gap merges them
    spans = episode_spans(pts, FPS, expected=2)
    assert len(spans) == 2, spans
    assert spans[0][0] <= 20 and 145 <= spans[0][1] < 195 and 150 < spans[1][0] <= 200 and spans[1][1] >= 295
    # three listed where the motion holds two episodes: no cut inside an episode's pause
    assert len(episode_spans(pts, FPS, expected=3)) == 1


NAMES = tuple(f"{s}_{m}" for s in ("right", "left") for m in ("wrist", "knuckle", "thumb_tip", "index_tip"))


def test_hand_tracks_read_pinch_yaw_and_grasp_from_markers():
    T = 60
    pts = np.zeros((T, 8, 3))
    gap = np.r_[np.full(20, 0.08), np.linspace(0.08, 0.02, 10), np.full(30, 0.02)]
    yaw = 0.3  # closing axis at yaw + 90 deg
    axis = np.array([np.cos(yaw + np.pi / 2), np.sin(yaw + np.pi / 2), 0])
    centre = np.array([0.35, -0.1, 0.95])
    for k in (0, 4):
        pts[:, k + 2] = centre - gap[:, None] / 2 * axis
        pts[:, k + 3] = centre + gap[:, None] / 2 * axis
    observed = np.ones((T, 8), bool)
    observed[40:50, 3] = False  # the index tip hidden for a while: the grasp holds
    tr = hand_tracks(pts, NAMES, observed, FPS)["right"]
    assert np.allclose(tr.pinch, centre)
    assert np.allclose(tr.yaw, yaw)
    assert not tr.closed[:20].any() and tr.closed[-25:].all()
    # a closure shorter than 0.3 s is noise, not a grasp
    blip = np.full(T, 0.08)
    blip[30:35] = 0.02
    pts[:, 2] = centre - blip[:, None] / 2 * axis
    pts[:, 3] = centre + blip[:, None] / 2 * axis
    assert not hand_tracks(pts, NAMES, None, FPS)["right"].closed.any()


def test_replay_follows_the_plan_and_aims_at_the_object():
    T = 46
    s = np.clip(np.arange(T) / 29, 0, 1)[:, None]  # the person's hand arrives at step 29 and closes at 30
    start, end = np.array([0.30, -0.20, 1.05]), np.array([0.36, -0.08, 0.97])
    closed = np.arange(T) >= 30
    path = start + s * (end - start)
    path[31:, 2] += 0.01 * np.arange(1, T - 30)  # ... and lifts as it closes, as people do
    yaw = np.full(T, 0.2)
    yaw[30:] += np.linspace(0, 0.8, T - 30)  # ... turning the wrist as it goes
    right = HandPlan(path, yaw, closed)
    # the person's other hand, taking nothing, drifts 3 cm and trembles (a keypoint's noise)
    drift = np.linspace(0, 0.03, T)[:, None] * [1, 0, 0] + np.random.default_rng(0).normal(0, 0.003, (T, 3))
    left = HandPlan(robot.HOME_HAND_POS["left"] + drift, np.zeros(T), np.zeros(T, bool))
    agent = ObjectCentricReplay({"right": right, "left": left})
    objects = np.zeros((11, 7))
    objects[:, :3] = [-0.45, 0.0, 0.03]
    objects[3, :3] = [0.366, -0.085, 0.93]  # a cell 7 mm off where the person closed
    obs = {"objects": objects, "proprio": np.r_[robot.HOME, np.zeros(28)]}
    agent.reset(obs)
    actions = []
    for _ in range(T):  # a perfect servo: the joints are where they were sent
        actions.append(agent.act(obs))
        obs["proprio"] = np.r_[actions[-1], np.zeros(28)]
    actions = np.array(actions)
    assert np.all(np.abs(np.diff(actions, axis=0)) <= MAX_JOINT_SPEED * 0.05 + 1e-9)
    # at the grasp (before it settles and the hold takes over from what the robot measures): aimed
    # at the cell's own grasp, not at the person's point 7 mm off and 25 mm high
    ik = ArmIK(load_model(), "right")
    fingers = [robot.JOINTS.index(f"right_{f}") for f in ("thumb", "index", "middle")]
    shut = int(np.argmax(actions[:, fingers[0]] >= robot.FINGER_CLOSED - 1e-9))
    assert actions[25, fingers].max() == 0.0 and 30 < shut < 40
    grasp = objects[3, :3] + [0, 0, GRASP_ABOVE_CENTRE]
    for k in range(30, shut + 1):  # ... where the hand stays until its fingers have shut
        assert np.linalg.norm(ik.site_pose(actions[k])[0] - grasp) < 0.004, k
    assert ik.site_pose(actions[-1])[0][2] > grasp[2] + 0.03  # then it lifts
    # a round cell: the hand keeps the yaw it closed with, not the person's turning wrist
    turned = [abs(quat_yaw(ik.site_pose(actions[k])[1]) - quat_yaw(ik.site_pose(actions[shut])[1])) for k in range(shut, T)]
    assert max(turned) < 0.02, turned
    left_arm = [i for i, j in enumerate(robot.JOINTS) if j.startswith("left_")]
    assert np.array_equal(actions[:, left_arm], np.tile(np.asarray(robot.HOME)[left_arm], (T, 1)))  # it stays home


def test_person_rest_maps_to_the_robot_rest():
    T = 30
    tracks = {side: HandTrack(np.tile([0.20, y, 1.0], (T, 1)), np.zeros(T), np.full(T, 0.08), np.zeros(T, bool))
              for side, y in (("right", -0.26), ("left", 0.26))}
    plans = plan_hands(tracks, FPS)
    for side, plan in plans.items():
        assert np.allclose(plan.site, robot.HOME_HAND_POS[side], atol=1e-6)


def test_fingers_close_only_on_a_hand_at_rest_at_the_grasp():
    # a slow servo (the arm goes a fifth of the way to each command): the hand arrives late, still moving
    T = 40
    s = np.clip(np.arange(T) / 29, 0, 1)[:, None]
    start, end = np.array([0.30, -0.20, 1.05]), np.array([0.36, -0.08, 0.97])
    right = HandPlan(start + s * (end - start), np.full(T, 0.2), np.arange(T) >= 30)
    left = HandPlan(np.tile(robot.HOME_HAND_POS["left"], (T, 1)), np.zeros(T), np.zeros(T, bool))
    agent = ObjectCentricReplay({"right": right, "left": left})
    objects = np.zeros((11, 7))
    objects[:, :3] = [-0.45, 0.0, 0.03]
    objects[3, :3] = [0.366, -0.085, 0.93]
    q = np.asarray(robot.HOME, float)
    obs = {"objects": objects, "proprio": np.r_[q, np.zeros(28)]}
    agent.reset(obs)
    ik, thumb = ArmIK(load_model(), "right"), robot.JOINTS.index("right_thumb")
    grasp = objects[3, :3] + [0, 0, GRASP_ABOVE_CENTRE]
    sites = []
    for _ in range(80):
        action = agent.act(obs)
        sites.append(ik.site_pose(q)[0])
        if action[thumb] > 0:
            break
        q = q + 0.2 * (action - q)
        obs["proprio"] = np.r_[q, np.zeros(28)]
    assert action[thumb] > 0, "the fingers never closed"
    assert np.linalg.norm(sites[-1] - grasp) <= GRASP_TOLERANCE
    assert np.linalg.norm(sites[-1] - sites[-2]) <= GRASP_TOLERANCE / 5
