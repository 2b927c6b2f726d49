"""Segmentation into episodes, and retargeting hand paths onto the robot."""

import numpy as np

from academy.sim import robot
from academy.sim.experts.ik import ArmIK
from academy.sim.world import load_model
from academy.watch.retarget import HandTrack, Retargeter, hand_tracks
from academy.watch.segment import active_spans

FPS = 30


def _moves(segments, T):
    pts = np.zeros((T, 2, 3))
    for a, b in segments:
        s = np.linspace(0, 1, b - a)
        pts[a:b, 0, 0] = 0.3 * np.sin(np.pi * s) ** 2
    return pts


def test_active_spans_split_on_idle_and_keep_short_pauses():
    # two episodes separated by 2.5 s at rest; the first has a 0.8 s pause inside
    pts = _moves([(15, 75), (99, 150), (225, 330)], 400)
    spans = active_spans(pts, FPS)
    assert len(spans) == 2, spans
    assert spans[0][0] <= 15 and spans[0][1] >= 150 and spans[1][0] <= 225 and spans[1][1] >= 330
    assert active_spans(np.zeros((100, 2, 3)), FPS) == []


def test_hand_tracks_read_pinch_yaw_and_grasp_from_markers():
    T = 60
    names = tuple(f"{s}_{m}" for s in ("right", "left") for m in ("wrist", "knuckle", "thumb_tip", "index_tip"))
    pts = np.zeros((T, 8, 3))
    gap = np.r_[np.full(20, 0.08), np.linspace(0.08, 0.02, 10), np.full(30, 0.02)]
    yaw = 0.3  # closing axis at yaw + 90 deg
    axis = np.array([np.cos(yaw + np.pi / 2), np.sin(yaw + np.pi / 2), 0])
    centre = np.array([0.35, -0.1, 0.95])
    for side, k in (("right", 0), ("left", 4)):
        pts[:, k + 2] = centre - gap[:, None] / 2 * axis
        pts[:, k + 3] = centre + gap[:, None] / 2 * axis
    tr = hand_tracks(pts, names)["right"]
    assert np.allclose(tr.pinch, centre)
    assert np.allclose(tr.yaw, yaw)
    assert not tr.closed[:20].any() and tr.closed[-20:].all()


def test_retargeted_robot_hand_follows_the_pinch():
    T = 45
    s = np.linspace(0, 1, T)[:, None]
    start, end = np.array([0.30, -0.20, 1.00]), np.array([0.38, -0.05, 0.97])
    right = HandTrack(start + s * (end - start), np.full(T, 0.2), np.full(T, 0.06), np.arange(T) > 30)
    left = HandTrack(np.tile([0.26, 0.30, 1.02], (T, 1)), np.zeros(T), np.full(T, 0.08), np.zeros(T, bool))
    actions, err = Retargeter()({"right": right, "left": left}, FPS)
    assert actions.shape == (30, robot.N_ACTUATORS)  # 1.5 s at 20 Hz
    ik = ArmIK(load_model(), "right")
    site, _ = ik.site_pose(actions[-1])
    from academy.human.motion import PINCH_BELOW_SITE
    assert np.linalg.norm(site - (end + [0, 0, PINCH_BELOW_SITE])) < 0.01
    fingers = [robot.JOINTS.index(f"right_{f}") for f in ("thumb", "index", "middle")]
    assert actions[0, fingers].max() == 0.0 and np.allclose(actions[-1, fingers], robot.FINGER_CLOSED)
    assert np.all(np.abs(np.diff(actions, axis=0)) <= 3.0 * 0.05 + 1e-9)  # joint speed cap
