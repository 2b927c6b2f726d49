"""The head-mounted rig as recorded: calibration, per-frame head poses, projection.

Reads a recording's ``calibration.json`` (intrinsics K and distortion per camera, each camera's
pose in the rig frame, OpenCV axes: x right, y down, z forward) and ``head_poses.csv`` (the rig
frame's pose in the world per frame). Everything here is what a real helmet provides.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class RecordingError(ValueError):
    """A recording that cannot be read as it claims to be; the message names the file and the problem."""


@dataclass
class Camera:
    name: str
    width: int
    height: int
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,) k1 k2 p1 p2 k3
    R_rig_cam: np.ndarray  # (3, 3): camera axes in the rig frame
    t_rig_cam: np.ndarray  # (3,): camera centre in the rig frame


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def read_json(path: Path, what: str = "") -> dict:
    """A recording's JSON file; missing or malformed: RecordingError naming it."""
    if not path.exists():
        raise RecordingError(f"{path}: missing{f' ({what})' if what else ''}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RecordingError(f"{path}: not valid JSON ({e})") from None


class Rig:
    """Cameras and head poses of one recording; world <-> pixel for any camera and frame."""

    def __init__(self, cameras: list[Camera], head_pos: np.ndarray, head_rot: np.ndarray, fps: float):
        self.cameras = cameras
        self.by_name = {c.name: c for c in cameras}
        self.head_pos, self.head_rot, self.fps = head_pos, head_rot, fps

    @property
    def n_frames(self) -> int:
        return len(self.head_pos)

    @classmethod
    def load(cls, folder: str | Path) -> "Rig":
        folder = Path(folder)
        cal_path, pose_path = folder / "calibration.json", folder / "head_poses.csv"
        for p in (cal_path, pose_path):
            if not p.exists():
                raise RecordingError(f"{p}: missing (a recording needs calibration.json and head_poses.csv)")
        cal = read_json(cal_path)
        cams = []
        for i, c in enumerate(cal.get("cameras") or []):
            where = f"{cal_path}: cameras[{i}]"
            try:
                cam = Camera(str(c["name"]), int(c["width"]), int(c["height"]), np.array(c["K"], float),
                             np.array(c.get("dist", [0] * 5), float), np.array(c["R_rig_cam"], float),
                             np.array(c["t_rig_cam"], float))
            except KeyError as e:
                raise RecordingError(f"{where}: field {e} missing") from None
            if cam.K.shape != (3, 3) or cam.R_rig_cam.shape != (3, 3) or cam.t_rig_cam.shape != (3,):
                raise RecordingError(f"{where}: K and R_rig_cam must be 3x3 and t_rig_cam 3 values")
            if not np.allclose(cam.R_rig_cam @ cam.R_rig_cam.T, np.eye(3), atol=1e-4):
                raise RecordingError(f"{where}: R_rig_cam is not a rotation")
            cams.append(cam)
        if len(cams) < 2:
            raise RecordingError(f"{cal_path}: {len(cams)} camera(s); triangulation needs at least 2")
        rows = []
        with open(pose_path, newline="") as fh:
            reader = csv.DictReader(fh)
            need = ["x", "y", "z", "qw", "qx", "qy", "qz"]
            if reader.fieldnames is None or any(k not in reader.fieldnames for k in need):
                raise RecordingError(f"{pose_path}: header must name {need}")
            for n, row in enumerate(reader):
                try:
                    rows.append([float(row[k]) for k in need])
                except (TypeError, ValueError):
                    raise RecordingError(f"{pose_path}: row {n + 1} is not numeric") from None
        poses = np.array(rows).reshape(-1, 7)
        if not len(poses) or not np.all(np.isfinite(poses)):
            raise RecordingError(f"{pose_path}: no head poses, or non-finite values")
        return cls(cams, poses[:, :3], quat_to_mat(poses[:, 3:]), float(cal.get("fps", 30)))

    def world_to_camera(self, cam: Camera, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(R, t) with x_cam = R @ x_world + t at ``frame``."""
        R_wc = self.head_rot[frame] @ cam.R_rig_cam
        c = self.head_pos[frame] + self.head_rot[frame] @ cam.t_rig_cam
        return R_wc.T, -R_wc.T @ c

    def projection(self, cam: Camera, frame: int) -> np.ndarray:
        """3x4 projection matrix P = K [R | t] (undistorted pixels)."""
        R, t = self.world_to_camera(cam, frame)
        return cam.K @ np.hstack([R, t[:, None]])

    def project(self, cam: Camera, frame: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) of world points (N, 3), and whether each is in front of the camera and in the image."""
        R, t = self.world_to_camera(cam, frame)
        pc = np.asarray(points, float) @ R.T + t
        z = pc[:, 2]
        uv = (pc[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None]) @ cam.K[:2, :2].T + cam.K[:2, 2]
        inside = (z > 0.02) & (uv[:, 0] >= 0) & (uv[:, 0] <= cam.width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= cam.height - 1)
        return uv, inside
