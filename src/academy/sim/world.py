"""The workcell: the compiled MuJoCo model and where things are in it.

``load_model()`` compiles the shipped MJCF once and hands out copies. ``Workcell`` indexes a
model by name (joint addresses, object bodies, bins, fixture walls, the tray target) so that
tasks, experts and the env read and write the scene without repeating name look-ups.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import mujoco
import numpy as np

from academy.sim import robot

ASSETS = Path(__file__).parent / "assets"
SCENE_XML = ASSETS / "workcell.xml"

BENCH_TOP_Z = 0.90
N_CELLS = 10
CELL_RADIUS = 0.009
CELL_HALF_HEIGHT = 0.0325
PART_HALF = np.array([0.016, 0.016, 0.055])
OBJECTS: tuple[str, ...] = tuple(f"cell_{i}" for i in range(N_CELLS)) + ("part",)

COLOURS = ("red", "green", "blue")
COLOUR_RGBA = {
    "red": (0.85, 0.15, 0.12, 1.0),
    "green": (0.15, 0.65, 0.20, 1.0),
    "blue": (0.15, 0.30, 0.85, 1.0),
}
BIN_INNER_HALF = 0.045  # inner half-width of each bin (m)
BIN_RIM_Z = BENCH_TOP_Z + 0.058  # top of the bin walls
FIXTURE_WALL_HALF_THICKNESS = 0.010
FIXTURE_DEPTH = 0.040
TRAY_TOP_Z = BENCH_TOP_Z + 0.008

# Where unused objects wait: on the floor behind the robot, out of reach and out of view.
PARK_X = -0.45


@functools.cache
def _compiled() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(SCENE_XML))


def load_model() -> mujoco.MjModel:
    """A fresh copy of the nominal workcell model (compiled once per process)."""
    return copy.deepcopy(_compiled())


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) for a rotation by ``yaw`` about the world z axis."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quat_yaw(quat: np.ndarray) -> float:
    """Yaw angle of a (w, x, y, z) quaternion (rotation of its x axis about world z)."""
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def quat_up_axis(quat: np.ndarray) -> np.ndarray:
    """The body's local z axis expressed in the world frame."""
    w, x, y, z = quat
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


class Workcell:
    """Name-based index into a workcell model. Cheap to build; holds no simulation state."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        jid = [model.joint(name).id for name in robot.JOINTS]
        self.robot_qpos_adr = np.array([model.jnt_qposadr[j] for j in jid])
        self.robot_dof_adr = np.array([model.jnt_dofadr[j] for j in jid])
        self.actuator_ids = np.array([model.actuator(name).id for name in robot.JOINTS])
        self.ctrl_range = model.actuator_ctrlrange[self.actuator_ids].copy()
        self.joint_range = model.jnt_range[jid].copy()
        self.object_qpos_adr = np.array([model.jnt_qposadr[model.joint(n).id] for n in OBJECTS])
        self.object_dof_adr = np.array([model.jnt_dofadr[model.joint(n).id] for n in OBJECTS])
        self.object_body = np.array([model.body(n).id for n in OBJECTS])
        self.object_geom = np.array([model.geom(n).id for n in OBJECTS])
        self.bin_body = np.array([model.body(f"bin_{i}").id for i in range(len(COLOURS))])
        self.fixture_body = model.body("fixture").id
        self.fixture_wall_body = {
            s: model.body(f"fixture_wall_{s}").id for s in ("px", "nx", "py", "ny")
        }
        self.tray_body = model.body("tray").id
        self.tray_target_site = model.site("tray_target").id
        self.grasp_site = {side: model.site(robot.GRASP_SITE[side]).id for side in robot.SIDES}
        robot_bodies = {model.body(name).id for name in _robot_body_names(model)}
        self.robot_geoms = np.array(
            [g for g in range(model.ngeom) if model.geom_bodyid[g] in robot_bodies]
        )
        self.park_pose = {
            name: model.body(name).pos.copy() for name in OBJECTS
        }  # the MJCF's body positions are the parking spots

    # --- positions of the fixed furniture, read from the model (randomization may move them)
    def bin_centre(self, i: int) -> np.ndarray:
        return self.model.body_pos[self.bin_body[i]][:2].copy()

    def fixture_centre(self) -> np.ndarray:
        return self.model.body_pos[self.fixture_body][:2].copy()

    def tray_target(self) -> np.ndarray:
        return (
            self.model.body_pos[self.tray_body][:2] + self.model.site_pos[self.tray_target_site][:2]
        )

    # --- object state
    def object_index(self, name: str) -> int:
        return OBJECTS.index(name)

    def object_pose(self, data: mujoco.MjData, name: str) -> np.ndarray:
        adr = self.object_qpos_adr[self.object_index(name)]
        return data.qpos[adr : adr + 7].copy()

    def object_poses(self, data: mujoco.MjData) -> np.ndarray:
        """(n_objects, 7) array of position and (w, x, y, z) quaternion for every object."""
        return np.stack([data.qpos[a : a + 7] for a in self.object_qpos_adr])

    def set_object_pose(
        self, data: mujoco.MjData, name: str, pos: np.ndarray, quat: np.ndarray | None = None
    ) -> None:
        i = self.object_index(name)
        adr = self.object_qpos_adr[i]
        data.qpos[adr : adr + 3] = pos
        data.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0) if quat is None else quat
        dof = self.object_dof_adr[i]
        data.qvel[dof : dof + 6] = 0.0

    def park(self, data: mujoco.MjData, names: list[str] | tuple[str, ...]) -> None:
        for name in names:
            self.set_object_pose(data, name, self.park_pose[name])

    def object_half_height(self, name: str) -> float:
        size = self.model.geom_size[self.object_geom[self.object_index(name)]]
        return float(size[1] if name.startswith("cell") else size[2])

    def set_object_colour(self, name: str, colour: str) -> None:
        self.model.geom_rgba[self.object_geom[self.object_index(name)]] = COLOUR_RGBA[colour]

    def set_fixture_clearance(self, clearance: float) -> None:
        """Move the socket's walls so that the hole is the part's width plus ``clearance``."""
        half_hole = PART_HALF[0] + clearance / 2
        offset = half_hole + FIXTURE_WALL_HALF_THICKNESS
        for side, axis, sign in (("px", 0, 1), ("nx", 0, -1), ("py", 1, 1), ("ny", 1, -1)):
            self.model.body_pos[self.fixture_wall_body[side]][axis] = sign * offset

    def fixture_clearance(self) -> float:
        offset = self.model.body_pos[self.fixture_wall_body["px"]][0]
        return float(2 * (offset - FIXTURE_WALL_HALF_THICKNESS - PART_HALF[0]))

    def touching_robot(self, data: mujoco.MjData, name: str) -> bool:
        """True if any robot geom is in contact with the named object."""
        g = self.object_geom[self.object_index(name)]
        pairs = data.contact.geom[: data.ncon]
        other = np.where(pairs[:, 0] == g, pairs[:, 1], np.where(pairs[:, 1] == g, pairs[:, 0], -1))
        return bool(np.isin(other, self.robot_geoms).any())


def _robot_body_names(model: mujoco.MjModel) -> list[str]:
    """All bodies in the subtree rooted at the robot's pelvis."""
    root = model.body("pelvis").id
    names = []
    for b in range(model.nbody):
        a = b
        while a != 0 and a != root:
            a = model.body_parentid[a]
        if a == root:
            names.append(model.body(b).name)
    return names
