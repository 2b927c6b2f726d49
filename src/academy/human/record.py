"""Render a person doing a task, filmed by the five-camera helmet rig (``academy record-human``).

One recording is one continuous take of several task episodes with idle stretches between
them (hands at rest while someone resets the scene). It is a folder:

    calibration.json     the rig: per camera its image size, intrinsics K (OpenCV convention:
                         x right, y down, z forward), distortion, and pose in the rig frame
    head_poses.csv       the rig's own pose in the world at every frame (as a helmet tracks itself)
    scene.json           the task, its difficulty and each episode's scene seed, goal and
                         starting object positions, in order
    videos/<camera>.mp4  one H.264 video per camera, 30 fps
    ground_truth.npz     for scoring only (academy.watch never reads it): 3D marker positions,
                         pinch points, apertures, episode spans, the person's measurements
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import mujoco
import numpy as np

from academy.human import body
from academy.human.motion import FPS, SCRIPTS, Habits, Performance
from academy.sim.experts.ik import ArmIK
from academy.sim.tasks import make_task
from academy.sim.world import OBJECTS, Workcell
from academy.video import Mp4Writer

IDLE_SECONDS = (1.5, 3.0)  # hands at rest between episodes
ARM_REST = {"right": np.array([-0.4, -0.35, 0.0, -1.5, 0.0, 0.0, 0.0]),  # elbows bent and out to the side
            "left": np.array([-0.4, 0.35, 0.0, -1.5, 0.0, 0.0, 0.0])}


def rig_calibration(model: mujoco.MjModel, image_size: tuple[int, int] = body.IMAGE_SIZE) -> dict:
    """The rig's calibration from the model: cameras in the rig frame, OpenCV convention."""
    h, w = image_size
    cams = []
    flip = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera (y up, looks along -z) -> OpenCV (y down, +z)
    for name, *_ in body.RIG_CAMERAS:
        cid = model.camera(f"rig_{name}").id
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.cam_quat[cid])
        f = (h / 2) / np.tan(np.deg2rad(model.cam_fovy[cid]) / 2)
        cams.append({
            "name": name, "width": w, "height": h,
            "K": [[f, 0.0, w / 2 - 0.5], [0.0, f, h / 2 - 0.5], [0.0, 0.0, 1.0]],
            "dist": [0.0, 0.0, 0.0, 0.0, 0.0],
            "R_rig_cam": (rot.reshape(3, 3) @ flip).tolist(),
            "t_rig_cam": (model.cam_pos[cid] - np.array(body.RIG_ORIGIN)).tolist(),
        })
    return {"rig": "academy-helmet-5", "fps": FPS, "cameras": cams,
            "head_poses": "head_poses.csv: the rig frame's pose in the world (x, y, z, qw, qx, qy, qz) per frame"}


class Poser:
    """Turns motion frames into the person's joint angles (IK per frame, head follows the hands)."""

    def __init__(self, model: mujoco.MjModel, person: body.Person, rng: np.random.Generator):
        self.model, self.person, self.rng = model, person, rng
        self.data = mujoco.MjData(model)
        self.qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in body.JOINTS])
        self.ik = {s: ArmIK(model, s, ARM_REST[s], joints=body.JOINTS, arm=body.arm_joint_names(s), site=f"h_{s}_pinch")
                   for s in body.SIDES}
        self.q = np.zeros(len(body.JOINTS))
        self.q[body.JOINTS.index("h_waist_pitch")] = person.lean
        for s in body.SIDES:
            self.q[self.ik[s].index] = ARM_REST[s]
        self.tilt = np.full(2, rng.uniform(-0.7, -0.4))  # fingers forward of vertical (rad), per hand
        self._aperture_table = self._finger_table()
        self.gaze = None
        self.busy = None
        self._tip_sites = [[self.model.site(f"k_{s}_{m}").id for m in ("thumb_tip", "index_tip")] for s in body.SIDES]
        self._pinch_site = [self.model.site(f"h_{s}_pinch").id for s in body.SIDES]
        self._tip_offset = np.zeros((2, 3))
        self._update_tip_offset()
        self._last = None

    def _finger_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Thumb-to-index gap (m) against finger flexion (rad), from the person's own hand."""
        m, d = self.model, self.data
        tips = [m.site(f"h_right_{t}").id for t in ("thumb_tip", "index_tip")]
        angles = np.linspace(-0.4, 0.5, 60)  # the branch where the tips close on each other
        gaps = []
        for a in angles:
            q = self.q.copy()
            for f in body.finger_joint_names("right"):
                q[body.JOINTS.index(f)] = a
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            gaps.append(np.linalg.norm(d.site_xpos[tips[0]] - d.site_xpos[tips[1]]))
        gaps = np.array(gaps)
        stop = int(np.argmin(gaps)) + 1  # past the closest point the tips would cross
        order = np.argsort(gaps[:stop])
        return gaps[:stop][order], angles[:stop][order]

    @staticmethod
    def _hand_quat(yaw: float, tilt: float) -> np.ndarray:
        """Hand pointing down, closing axis (hand y) at ``yaw``, turned ``tilt`` about that axis."""
        q = np.zeros(4)
        mujoco.mju_mulQuat(q, np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]),
                           np.array([np.cos(tilt / 2), 0, np.sin(tilt / 2), 0]))
        return q

    def pose(self, frame) -> np.ndarray:
        """Joint angles (len(body.JOINTS),) for one motion frame."""
        # the torso leans into far reaches and turns a little toward the working hand
        far = max(0.0, float(frame.pinch[:, 0].max()) - 0.40)
        lean = self.person.lean + 1.0 * far
        turn = 0.5 * float(np.clip(frame.pinch[:, 1].mean(), -0.3, 0.3))
        i_pitch, i_yaw = body.JOINTS.index("h_waist_pitch"), body.JOINTS.index("h_waist_yaw")
        self.q[i_pitch] += 0.15 * (lean - self.q[i_pitch])
        self.q[i_yaw] += 0.15 * (turn - self.q[i_yaw])
        for h, s in enumerate(body.SIDES):
            # the closing axis follows the script's yaw; how far the fingers point forward
            # (tilt about the closing axis) is the person's: whatever the arm reaches best,
            # changing slowly from frame to frame
            best = None
            for tilt in self.tilt[h] + np.array([0.0, -0.1, 0.1]):
                tilt = float(np.clip(tilt, -1.2, 0.2))
                # the pinch point is the midpoint of the thumb- and index-tip markers: aim the
                # hand's pinch site so that midpoint lands on the script's point
                target = frame.pinch[h] - self._tip_offset[h]
                sol, err = self.ik[s].solve(self.q, target, self._hand_quat(frame.yaw[h], tilt), iterations=8)
                if best is None or err < best[0] - 1e-4:
                    best = (err, sol, tilt)
            self.tilt[h] = best[2]
            self.q[self.ik[s].index] = best[1]
            flex = float(np.interp(frame.aperture[h], *self._aperture_table))
            for f in body.finger_joint_names(s):
                self.q[body.JOINTS.index(f)] = flex
        self._update_tip_offset()
        self._look(frame)
        return self.q.copy()

    def _update_tip_offset(self) -> None:
        """Where the tip markers' midpoint sits relative to the pinch site (for the next frame)."""
        d = self.data
        d.qpos[self.qadr] = self.q
        mujoco.mj_kinematics(self.model, d)
        for h in range(2):
            mid = d.site_xpos[self._tip_sites[h]].mean(0)
            self._tip_offset[h] = mid - d.site_xpos[self._pinch_site[h]]

    def _look(self, frame) -> None:
        """Head turns toward the hands (the busier one more), with a lag and a little sway."""
        # the busier hand draws the eye: the moving one, more so when it carries something
        speed = np.zeros(2) if self._last is None else np.linalg.norm(frame.pinch - self._last, axis=1) * FPS
        self._last = frame.pinch.copy()
        w = 0.2 + 4.0 * speed + 1.0 * (np.array(frame.holding) >= 0)
        self.busy = w if self.busy is None else self.busy + 0.05 * (w - self.busy)
        target = (self.busy[:, None] * frame.pinch).sum(0) / self.busy.sum()
        self.gaze = target if self.gaze is None else self.gaze + 0.12 * (target - self.gaze)
        m, d = self.model, self.data
        # self.data holds this frame's posture: _update_tip_offset has just run the kinematics
        head = m.body("h_head").id
        torso = m.body("h_torso").id
        rel = d.xmat[torso].reshape(3, 3).T @ (self.gaze - d.xpos[head])
        yaw = np.arctan2(rel[1], rel[0])
        down = np.arctan2(-rel[2], np.hypot(rel[0], rel[1]))
        sway = 0.02 * self.rng.normal(size=2)
        self.q[body.JOINTS.index("h_neck_yaw")] = 0.8 * yaw + sway[0]
        self.q[body.JOINTS.index("h_neck_pitch")] = np.clip(down - np.deg2rad(22) + sway[1], -0.5, 0.95)


def perform(task: str, seed: int, difficulty: dict | None, model: mujoco.MjModel, rng: np.random.Generator):
    """A person's frames for one episode of ``task`` in the scene of ``seed``; sets the model's scene."""
    from academy.sim.env import WorkcellEnv

    env = WorkcellEnv(task, difficulty)
    obs, info = env.reset(seed=seed)
    world = Workcell(model)
    make_task(task, **(difficulty or {})).reset(world, mujoco.MjData(model), np.random.default_rng(seed))
    p = Performance(np.asarray(obs["objects"], float), rng, Habits.sample(rng))
    p.wait(0.3, pause=False)
    script = SCRIPTS[task]
    if task == "sort_cells":
        script(p, info["goal"], [world.bin_centre(b) for b in range(3)])
    else:
        script(p, info["goal"])
    return p.frames, info["goal"]


def idle(last, seconds: float, rng: np.random.Generator) -> list:
    """Hands resting (a few millimetres of drift) between episodes."""
    from academy.human.motion import Frame

    out = []
    for k in range(int(round(seconds * FPS))):
        drift = 0.002 * np.sin(2 * np.pi * k / (1.7 * FPS) + rng.uniform(0, 0.1))
        out.append(Frame(last.pinch + drift, last.yaw.copy(), last.aperture.copy(), last.objects.copy(), (-1, -1)))
    return out


def record(out: str | Path, task: str, seeds: list[int], person_seed: int = 0, difficulty: dict | None = None,
           image_size: tuple[int, int] = body.IMAGE_SIZE, on_frame: Callable[[int, int], None] | None = None,
           max_frames: int | None = None, render: bool = True) -> Path:
    """Render one continuous recording of ``task`` for each scene seed in ``seeds``.

    ``max_frames`` cuts each episode short (a preview, or a test's small recording). With
    ``render=False`` no video is made: only the ground truth, the head poses, the calibration and
    the scene (what replaying a person's motion from perfect keypoints needs, in seconds).
    """
    out = Path(out)
    rng = np.random.default_rng([person_seed, *seeds])
    person = body.Person.sample(np.random.default_rng(person_seed))
    model = body.scene_model(person, image_size[1], image_size[0])
    model.light_castshadow[:] = 0  # shadows cost 3x the render time; see docs/watch.md
    poser = Poser(model, person, rng)
    data = mujoco.MjData(model)
    world = Workcell(model)
    obj_adr = world.object_qpos_adr
    renderer = mujoco.Renderer(model, image_size[0], image_size[1]) if render else None
    opt = mujoco.MjvOption()
    opt.geomgroup[body.HIDDEN_GROUP] = 0
    writers = {name: Mp4Writer(out / "videos" / f"{name}.mp4", FPS, crf=18) for name, *_ in body.RIG_CAMERAS} if render else {}
    out.mkdir(parents=True, exist_ok=True)
    marker_sites = [model.site(f"k_{m}").id for m in body.MARKERS]
    rig_site = model.site("h_rig").id
    tip_sites = [[model.site(f"k_{s}_{m}").id for m in ("thumb_tip", "index_tip")] for s in body.SIDES]
    keypoints, pinch, aperture, head_rows, spans = [], [], [], [], []
    takes = []
    n = 0
    for i, seed in enumerate(seeds):
        frames, goal = perform(task, seed, difficulty, model, rng)
        lead = idle(frames[0], rng.uniform(*IDLE_SECONDS), rng)
        frames = (lead + frames)[:max_frames]
        spans.append((n + len(lead), n + len(frames)))
        # where the task's objects start (those on the bench), so a reader can check that the
        # seed still draws this scene
        start = {f"{obj}": [round(float(v), 5) for v in frames[0].objects[j, :3]]
                 for j, obj in enumerate(OBJECTS) if frames[0].objects[j, 2] > 0.5}
        takes.append({"seed": int(seed), "goal": goal, "objects": start})
        for f in frames:
            data.qpos[poser.qadr] = poser.pose(f)
            mujoco.mj_kinematics(model, data)
            objects = f.objects.copy()
            for h, obj in enumerate(f.holding):  # what a hand holds sits where IK put the hand
                if obj >= 0:
                    objects[obj, :3] += data.site_xpos[tip_sites[h]].mean(0) - f.pinch[h]
            for j, adr in enumerate(obj_adr):
                data.qpos[adr : adr + 7] = objects[j]
            mujoco.mj_forward(model, data)
            for name in writers:
                renderer.update_scene(data, f"rig_{name}", scene_option=opt)
                writers[name].add(renderer.render())
            keypoints.append(data.site_xpos[marker_sites].copy())
            pinch.append(np.stack([data.site_xpos[ts].mean(0) for ts in tip_sites]))
            aperture.append(f.aperture.copy())
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, data.site_xmat[rig_site])
            head_rows.append([n, round(n / FPS, 5), *data.site_xpos[rig_site].tolist(), *quat.tolist()])
            n += 1
            if on_frame:
                on_frame(n, i)
    for w in writers.values():
        w.close()
    (out / "calibration.json").write_text(json.dumps(rig_calibration(model, image_size), indent=2))
    with open(out / "head_poses.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["frame", "time", "x", "y", "z", "qw", "qx", "qy", "qz"])
        wr.writerows(head_rows)
    (out / "scene.json").write_text(json.dumps({"task": task, "difficulty": difficulty or {}, "fps": FPS,
                                                "episodes": takes}, indent=2))
    np.savez_compressed(out / "ground_truth.npz", keypoints=np.array(keypoints), names=np.array(body.MARKERS),
                        pinch=np.array(pinch), aperture=np.array(aperture), spans=np.array(spans),
                        person=json.dumps(person.to_dict()))
    return out


def _record_job(args: tuple) -> str:
    out, task, seeds, person_seed, difficulty, render = args
    return str(record(out, task, seeds, person_seed, difficulty, render=render))


def record_many(out: str | Path, task: str, episodes: int, first_seed: int = 0, per_recording: int = 5,
                first_person: int = 0, difficulty: dict | None = None, workers: int = 2,
                on_recording: Callable[[str], None] | None = None, render: bool = True) -> list[Path]:
    """``episodes`` episodes (scene seeds first_seed..) in recordings of ``per_recording`` each,
    one person per recording (person seeds first_person..), rendered in ``workers`` processes
    (``render=False``: ground truth only, no video)."""
    from concurrent.futures import ProcessPoolExecutor

    out = Path(out)
    seeds = list(range(first_seed, first_seed + episodes))
    jobs = [(out / f"{task}-{first_seed + i:06d}", task, seeds[i : i + per_recording], first_person + i // per_recording,
             difficulty, render) for i in range(0, len(seeds), per_recording)]
    done = []
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for path in pool.map(_record_job, jobs):
            done.append(Path(path))
            if on_recording:
                on_recording(path)
    return done
