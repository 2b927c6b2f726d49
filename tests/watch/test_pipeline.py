"""academy watch on real (small) recordings, and what it does with bad ones."""

import json
import shutil

import numpy as np
import pytest

from academy.watch.keypoints import Keypoints, mpjpe_mm, recording_keypoints
from academy.watch.pipeline import episode_plans, watch
from academy.watch.rig import RecordingError, Rig


def test_keypoints_of_a_real_recording_are_millimetre_accurate(small_recording):
    kp = recording_keypoints(small_recording)
    gt = np.load(small_recording / "ground_truth.npz")["keypoints"]
    err = mpjpe_mm(kp.points, gt)
    assert np.isfinite(kp.points).mean() > 0.9
    assert np.median(err) < 10.0, np.median(err)


def _copy(rec, tmp_path, name="rec"):
    dst = tmp_path / name
    shutil.copytree(rec, dst)
    return dst


def test_truncated_video_skips_the_recording_with_its_reason(small_recording, tmp_path):
    rec = _copy(small_recording, tmp_path)
    video = rec / "videos" / "front_left.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    report = watch(rec, tmp_path / "ds")
    (why,) = report.recordings_skipped.values()
    assert "front_left.mp4" in why
    assert report.episodes == []


def test_missing_camera_and_mismatched_calibration_are_named(small_recording, tmp_path):
    rec = _copy(small_recording, tmp_path, "a")
    (rec / "videos" / "chin.mp4").unlink()
    with pytest.raises(RecordingError, match="chin.mp4: missing"):
        recording_keypoints(rec)
    rec = _copy(small_recording, tmp_path, "b")
    cal = json.loads((rec / "calibration.json").read_text())
    cal["cameras"][1]["width"] = 640
    (rec / "calibration.json").write_text(json.dumps(cal))
    with pytest.raises(RecordingError, match="calibration.json says camera 'front_right' is 640x300"):
        recording_keypoints(rec)
    rec = _copy(small_recording, tmp_path, "c")
    (rec / "head_poses.csv").write_text("frame,time,x,y\n0,0,1,2\n")
    with pytest.raises(RecordingError, match="head_poses.csv: header must name"):
        Rig.load(rec)


def test_a_scene_seed_that_draws_another_scene_is_caught(small_recording):
    from academy.sim.env import WorkcellEnv
    from academy.watch.pipeline import scene_mismatch

    scene = json.loads((small_recording / "scene.json").read_text())
    (ep,) = scene["episodes"]
    assert "part" in ep["objects"]
    env = WorkcellEnv(scene["task"])
    assert scene_mismatch(env, ep) == ""  # the recorder and the task draw the same scene
    ep["objects"]["part"][1] += 0.02
    assert "puts part 20 mm from where scene.json says" in scene_mismatch(env, ep)
    ep["goal"]["clearance"] = 0.009
    assert "now draws goal" in scene_mismatch(env, ep)


def test_person_out_of_view_skips_the_episode():
    T = 90
    names = tuple(f"{s}_{m}" for s in ("right", "left") for m in ("wrist", "knuckle", "thumb_tip", "index_tip"))
    pts = np.full((T, 8, 3), 0.3)
    pts[30:, :4] = np.nan  # the right hand leaves the cameras' view
    kp = Keypoints(names, pts, pts, np.isfinite(pts).all(-1), np.zeros((T, 8), int), np.zeros((T, 8)), 30.0)
    plans, reason = episode_plans(kp, (0, T))
    assert plans == {} and "keypoints in only 33% of frames" in reason


class SyntheticLandmarker:
    """A stand-in for a learned landmarker (per-hand keypoints, 1 px noise): the ground truth
    projected through the rig, frame by frame, as a model would return it."""

    def __init__(self, rec, camera):
        from academy.human.body import MARKERS

        self.names = MARKERS
        self.rig, self.cam = Rig.load(rec), camera
        self.truth = np.load(rec / "ground_truth.npz")["keypoints"]
        self.t = 0
        self.rng = np.random.default_rng(0)

    def __call__(self, rgb):
        from academy.watch.detect import Candidates

        uv, inside = self.rig.project(self.cam, self.t, self.truth[self.t])
        uv = uv + self.rng.normal(0, 1.0, uv.shape)
        self.t += 1
        pts = {n: uv[k : k + 1] if inside[k] else np.zeros((0, 2)) for k, n in enumerate(self.names)}
        return Candidates(pts, {n: np.ones(len(v)) for n, v in pts.items()}, {n: np.zeros(len(v), bool) for n, v in pts.items()})


class PerCamera:
    """Routes each camera's frames to its own landmarker (detection runs camera by camera)."""

    def __init__(self, rec):
        rig = Rig.load(rec)
        self.detectors = [SyntheticLandmarker(rec, c) for c in rig.cameras]
        self.names = self.detectors[0].names
        self.frames, self.i = rig.n_frames, 0

    def __call__(self, rgb):
        det = self.detectors[self.i // self.frames]
        self.i += 1
        return det(rgb)


def test_a_learned_landmarker_plugs_in(small_recording):
    kp = recording_keypoints(small_recording, detector=PerCamera(small_recording))
    gt = np.load(small_recording / "ground_truth.npz")["keypoints"]
    assert kp.names == tuple(PerCamera(small_recording).names)
    assert np.median(mpjpe_mm(kp.points, gt)) < 3.0


def test_a_pause_is_dropped_from_the_demo_and_the_demo_still_succeeds():
    from academy.sim.env import WorkcellEnv
    from academy.sim.experts import make_expert
    from academy.sim.rollout_expert import rollout
    from academy.watch.pipeline import Commands, drop_idle, idle_steps

    env = WorkcellEnv("place_part")
    expert = rollout(env, make_expert("place_part"), 3, record=True)
    assert expert.success
    n = len(expert.actions) // 3  # the person stops a third of the way through for 1.5 s
    paused = expert.actions[:n] + [expert.actions[n - 1]] * 30 + expert.actions[n:]
    demo = rollout(env, Commands(paused), 3, record=True)
    assert demo.success and len(demo.actions) >= len(expert.actions) + 25
    idle = idle_steps(demo)
    assert idle[n + 10 : n + 30].all()  # once the arm has settled, the pause is idle
    trimmed, dropped = drop_idle(env, demo)
    assert trimmed.success and dropped == idle.sum() >= 20
    assert len(trimmed.actions) == len(demo.actions) - dropped
    assert not idle_steps(trimmed)[n : n + 5].any()
