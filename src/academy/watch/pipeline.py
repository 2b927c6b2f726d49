"""``academy watch``: recordings of people -> robot demonstrations in the episode store.

For each recording folder (videos, calibration.json, head_poses.csv, scene.json):
keypoints (detect, triangulate, smooth) -> episodes (active stretches) -> hand tracks and
grasps -> robot joint actions (retarget, IK) -> replay in the nominal simulation from the
episode's scene -> the demos that succeed go to the dataset with source "human-video".

The scene's starting object positions come from the scene description (scene.json names each
episode's scene seed, as a lab's log of how the bench was laid out), not from the video.
Where a recording carries ground truth (rendered ones do), the keypoint error against it is
reported; nothing else reads it. A recording that cannot be read is skipped with its reason; an episode that cannot be used
(too few keypoints, no match in scene.json, replay fails) is skipped with its reason. Nothing
is written for it: never a silently wrong demo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from academy.data import Dataset
from academy.data.collect import FPS as ROBOT_FPS
from academy.data.collect import episode_frames, workcell_features
from academy.data.store import EpisodeMeta
from academy.sim import robot
from academy.sim.rollout_expert import EpisodeResult, rollout
from academy.sim.env import WorkcellEnv
from academy.sim.tasks import make_task
from academy.sim.world import OBJECTS
from academy.watch.keypoints import Keypoints, mpjpe_mm, recording_keypoints
from academy.watch.retarget import HandPlan, ObjectCentricReplay, hand_tracks, plan_hands, workcell_places
from academy.watch.rig import RecordingError, read_json
from academy.watch.segment import episode_spans

MIN_COVERAGE = 0.8  # share of an episode's frames in which every keypoint was triangulated
MAX_IK_ERROR = 0.01  # m: a retargeted pose the robot cannot reach this closely is not a demo
IDLE_ACTION = 2e-3  # rad: a step whose command moves no joint further than this, ...
IDLE_SPEED = 0.02  # rad/s: ... taken while no joint moves faster than this, is idle


@dataclass
class EpisodeReport:
    recording: str
    index: int
    seed: int | None
    frames: tuple[int, int]
    outcome: str  # "success", "failure" (replayed, did not succeed) or "skipped"
    reason: str = ""
    idle_dropped: int = 0  # idle steps (the person paused) left out of the stored demo


@dataclass
class WatchReport:
    episodes: list[EpisodeReport] = field(default_factory=list)
    recordings_skipped: dict[str, str] = field(default_factory=dict)
    keypoint_error_mm: dict[str, dict] = field(default_factory=dict)  # per recording, where ground truth exists
    video_seconds: float = 0.0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"episodes": [e.__dict__ for e in self.episodes], "recordings_skipped": self.recordings_skipped,
                "keypoint_error_mm": self.keypoint_error_mm, "video_seconds": self.video_seconds,
                "wall_seconds": self.wall_seconds}


def find_recordings(path: str | Path) -> list[Path]:
    """A recording folder, or every recording folder directly inside ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise RecordingError(f"{path}: not a folder")
    if (path / "calibration.json").exists():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / "calibration.json").exists())
    if not found:
        raise RecordingError(f"{path}: no recordings (folders with calibration.json) in it")
    return found


def read_scene(folder: Path) -> dict:
    p = folder / "scene.json"
    scene = read_json(p, "the scene description names the task and each episode's scene seed")
    for k in ("task", "episodes"):
        if k not in scene:
            raise RecordingError(f"{p}: field '{k}' missing")
    make_task(scene["task"])  # raises on an unknown task
    return scene


def scene_mismatch(env: WorkcellEnv, ep: dict) -> str:
    """Why the scene seed no longer draws the scene that was filmed, or "" if it does: its goal
    and (when listed) its objects' starting positions, within 1 mm."""
    env.reset(int(ep["seed"]))
    if "goal" in ep and json.loads(json.dumps(env.goal)) != ep["goal"]:
        return (f"scene seed {ep['seed']} now draws goal {env.goal}, scene.json lists {ep['goal']}: "
                "the task's scenes changed since this was recorded")
    for name, pos in (ep.get("objects") or {}).items():
        adr = env.world.object_qpos_adr[OBJECTS.index(name)]
        off = float(np.linalg.norm(env.data.qpos[adr : adr + 3] - np.asarray(pos)))
        if off > 1e-3:
            return (f"scene seed {ep['seed']} puts {name} {1000 * off:.0f} mm from where scene.json says it "
                    "started: the task's scenes changed since this was recorded")
    return ""


def episode_plans(kp: Keypoints, span: tuple[int, int]) -> tuple[dict[str, HandPlan], str]:
    """Robot hand plans for one span of keypoints, or ({}, reason) when they cannot be trusted."""
    a, b = span
    pts = kp.points[a:b]
    ok = np.all(np.isfinite(pts), axis=(1, 2))
    if ok.mean() < MIN_COVERAGE:
        return {}, f"keypoints in only {ok.mean():.0%} of frames (a hand out of view?)"
    idx = np.flatnonzero(ok)  # short holes at the span's ends: hold the nearest complete frame
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(pts))), 0, len(idx) - 1)]
    pts = np.where(ok[:, None, None], pts, pts[nearest])
    return plan_hands(hand_tracks(pts, kp.names, kp.observed[a:b], kp.fps), kp.fps), ""


class Commands:
    """Replays a fixed list of commands (an agent); the last one is held when they run out."""

    def __init__(self, actions: list[np.ndarray]):
        self.actions = actions

    def reset(self, obs: dict) -> None:
        self.i = 0

    def act(self, obs: dict) -> np.ndarray:
        a = self.actions[min(self.i, len(self.actions) - 1)]
        self.i += 1
        return a


def idle_steps(result: EpisodeResult) -> np.ndarray:
    """Which steps of a replay were idle: the person paused, so the command stood still and so did
    the robot. A demonstration's pauses teach a policy to stand still where it should go on."""
    actions = np.stack(result.actions)
    speed = np.abs(np.stack([o["proprio"][robot.N_ACTUATORS :] for o in result.observations])).max(1)
    still = np.r_[False, np.abs(np.diff(actions, axis=0)).max(1) < IDLE_ACTION]
    return still & (speed < IDLE_SPEED)


def drop_idle(env: WorkcellEnv, result: EpisodeResult) -> tuple[EpisodeResult, int]:
    """The replay again without its idle steps, and how many were left out; the original where
    nothing was idle or where the shortened replay no longer succeeds (the physics decides)."""
    idle = idle_steps(result)
    if not idle.any():
        return result, 0
    kept = [a for a, s in zip(result.actions, idle) if not s]
    again = rollout(env, Commands(kept), result.seed, record=True)
    if not again.success:
        return result, 0
    return again, int(idle.sum())  # (the shortened replay may then take a step or two more to finish)


def watch(path: str | Path, out: str | Path, on_recording: Callable[[str], None] | None = None,
          keep_failures: bool = False, keypoints_of: Callable[[Path], Keypoints] = recording_keypoints) -> WatchReport:
    """Process every recording under ``path``; append successful demos to the dataset ``out``.

    ``keypoints_of`` reads a recording's keypoints: from its videos (the default), or from its
    ground truth (``truth_keypoints``) to measure the replay with perception taken out."""
    import time

    t0 = time.time()
    report = WatchReport()
    out = Path(out)
    ds = Dataset(out) if (out / "meta/info.json").exists() else Dataset.create(out, ROBOT_FPS, workcell_features())
    with ds.writer(flush_every=10) as writer:
        for folder in find_recordings(path):
            _watch_recording(folder, writer, report, keep_failures, keypoints_of)
            if on_recording:
                on_recording(str(folder))
    report.wall_seconds = time.time() - t0
    return report


def _watch_recording(folder: Path, writer, report: WatchReport, keep_failures: bool,
                     keypoints_of: Callable[[Path], Keypoints]) -> None:
    try:
        scene = read_scene(folder)
        kp = keypoints_of(folder)
    except (RecordingError, ValueError) as e:
        report.recordings_skipped[str(folder)] = str(e)
        return
    report.video_seconds += len(kp.points) / kp.fps
    truth = folder / "ground_truth.npz"
    if truth.exists():  # scoring only: nothing below depends on it
        err = mpjpe_mm(kp.points, np.load(truth)["keypoints"])
        report.keypoint_error_mm[str(folder)] = {
            "median": float(np.median(err)), "p90": float(np.percentile(err, 90)), "mean": float(err.mean()),
            "coverage": float(np.isfinite(kp.points).all(-1).mean())}
    listed = scene["episodes"]
    spans = episode_spans(kp.points, kp.fps, len(listed))
    if len(spans) != len(listed):
        report.recordings_skipped[str(folder)] = (
            f"found {len(spans)} episodes in the video, scene.json lists {len(listed)}: cannot tell which scene is which")
        return
    task = scene["task"]
    env = WorkcellEnv(task, scene.get("difficulty") or None)
    sentence = make_task(task).description
    for i, (span, ep) in enumerate(zip(spans, listed)):
        seed = int(ep["seed"])
        plans, reason = episode_plans(kp, span)
        reason = scene_mismatch(env, ep) or reason
        if reason:
            report.episodes.append(EpisodeReport(str(folder), i, seed, span, "skipped", reason))
            continue
        agent = ObjectCentricReplay(plans, places=workcell_places(env.world, env.goal))  # env: reset to seed
        result = rollout(env, agent, seed, record=True)
        outcome = "success" if result.success else "failure"
        dropped = 0
        if result.success:
            result, dropped = drop_idle(env, result)
        if not result.success:
            ik = np.percentile(np.array(agent.errors), 95) if agent.errors else 0.0
            reason = (f"the robot could not follow the hands (IK error p95 {1000 * ik:.0f} mm)" if ik > MAX_IK_ERROR
                      else "replay did not complete the task")
        report.episodes.append(EpisodeReport(str(folder), i, seed, span, outcome, reason, dropped))
        if result.success or keep_failures:
            meta = EpisodeMeta(task=task, source="human-video", outcome=outcome, seed=seed)
            writer.add_episode(episode_frames(result), meta, sentence)
