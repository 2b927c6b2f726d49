"""The human demonstrator: a person of their own size, posed by IK, filmed by a calibrated rig."""

import json

import mujoco
import numpy as np

from academy.human import body
from academy.human.motion import FPS
from academy.human.record import Poser, perform, rig_calibration
from academy.watch.rig import Rig


def test_people_differ_and_differ_from_the_robot():
    people = [body.Person.sample(np.random.default_rng(s)) for s in range(5)]
    arms = [p.upper_arm + p.forearm for p in people]
    assert len(set(np.round(arms, 4))) == 5
    assert all(a < 0.64 for a in arms)  # the robot's arm (0.33 + 0.31) is longer than any person's
    model = body.scene_model(people[0])
    for m in body.MARKERS:
        assert model.geom(f"m_{m}").id >= 0
    # the robot is in the scene (tasks lay it out) but drawn in a hidden group
    robot_palm = model.geom("right_palm").id
    assert model.geom_group[robot_palm] == body.HIDDEN_GROUP


def test_ik_puts_the_pinch_where_the_script_says():
    person = body.Person.sample(np.random.default_rng(3))
    model = body.scene_model(person)
    rng = np.random.default_rng(0)
    frames, goal = perform("place_part", 2, None, model, rng)
    assert len(frames) > 3 * FPS
    poser = Poser(model, person, rng)
    data = mujoco.MjData(model)
    tips = [[model.site(f"k_{s}_{m}").id for m in ("thumb_tip", "index_tip")] for s in body.SIDES]
    errs = []
    for f in frames[::4]:
        data.qpos[poser.qadr] = poser.pose(f)
        mujoco.mj_kinematics(model, data)
        for h in range(2):
            errs.append(np.linalg.norm(data.site_xpos[tips[h]].mean(0) - f.pinch[h]))
    assert np.median(errs) < 0.003, np.median(errs)


def test_recording_layout_and_calibration_project_the_markers(small_recording):
    rec = small_recording
    for name in ("calibration.json", "head_poses.csv", "scene.json", "ground_truth.npz"):
        assert (rec / name).exists()
    cal = json.loads((rec / "calibration.json").read_text())
    assert [c["name"] for c in cal["cameras"]] == [c[0] for c in body.RIG_CAMERAS]
    for c in cal["cameras"]:
        assert (rec / "videos" / f"{c['name']}.mp4").exists()
    rig = Rig.load(rec)
    gt = np.load(rec / "ground_truth.npz")
    assert rig.n_frames == len(gt["keypoints"]) == 60
    # the rig moves with the head
    assert np.linalg.norm(rig.head_pos[-1] - rig.head_pos[0]) > 0.001 or not np.allclose(rig.head_rot[-1], rig.head_rot[0])
    # calibration and head pose put each marker inside some camera's image
    seen = np.zeros(len(body.MARKERS), int)
    for cam in rig.cameras:
        _, inside = rig.project(cam, 30, gt["keypoints"][30])
        seen += inside
    assert np.all(seen >= 2)


def test_calibration_is_in_the_opencv_convention():
    """Square pixels, the principal point at the image centre in OpenCV's pixel-centre
    convention, and camera rotations that are rotations (projection itself is checked on a
    rendered recording above)."""
    model = body.scene_model(body.Person())
    cal = rig_calibration(model)
    for c in cal["cameras"]:
        K = np.array(c["K"])
        assert abs(K[0, 2] - (c["width"] / 2 - 0.5)) < 1e-9 and K[0, 0] == K[1, 1]
        R = np.array(c["R_rig_cam"])
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9)
