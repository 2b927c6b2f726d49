"""The human demonstrator: a person with human proportions at the workcell, wearing a marker glove.

The person is a kinematic MuJoCo body (posed, not simulated: a demonstration is recorded, not
controlled) built per person from ``Person``: stature, shoulder width, upper-arm, forearm and
hand lengths differ from the robot's and from person to person. Each hand has five fingers
(one flexion hinge each); thumb and index close along the hand's y axis, as the robot's
fingers do. Each glove carries four emissive markers: wrist, index knuckle, thumb and index
finger (``MARKERS``); a marker's colour names its place on the hand, the same on both gloves.

The scene is the robot's workcell with the person added and the robot hidden (its geoms move
to a group the recorder does not draw), so a task's seeded reset lays out the objects exactly
as it does for the robot.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import asdict, dataclass

import mujoco
import numpy as np

from academy.sim.world import ASSETS, SCENE_XML

SIDES = ("right", "left")
# The glove's markers, in keypoint order. Both gloves are alike: a marker's colour names its
# place on the hand (hue in degrees), and which hand it is on is told apart by tracking. The
# four hues keep 35 degrees or more from each other and from the scene's colours (red, orange,
# green and blue objects, and the yellow-green that video compression makes where green meets
# the bench); a hand's two fingertips, which touch, differ by 130 degrees. See docs/watch.md.
MARKER_SITES = ("wrist", "knuckle", "thumb_tip", "index_tip")
MARKERS: tuple[str, ...] = tuple(f"{side}_{m}" for side in SIDES for m in MARKER_SITES)
MARKER_HUES = {"wrist": 265, "knuckle": 335, "thumb_tip": 170, "index_tip": 300}
MARKER_RADIUS = 0.011

# The five-camera helmet rig, in the head frame (x forward, y left, z up): name, position,
# yaw (left of forward) and pitch (below horizontal) of the optical axis, vertical field of view.
RIG_ORIGIN = (0.02, 0.0, 0.20)  # the rig's own frame: what the helmet's tracker reports
RIG_CAMERAS = (
    ("front_left", (0.10, 0.035, 0.17), 0.0, 20.0, 70.0),
    ("front_right", (0.10, -0.035, 0.17), 0.0, 20.0, 70.0),
    ("left", (0.04, 0.10, 0.18), 50.0, 30.0, 70.0),
    ("right", (0.04, -0.10, 0.18), -50.0, 30.0, 70.0),
    ("chin", (0.12, 0.0, 0.10), 0.0, 50.0, 70.0),
)
IMAGE_SIZE = (300, 400)  # height, width of every rig camera


def camera_quat(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """MuJoCo camera orientation (looks along its -z, y up) for an optical axis at yaw, pitch."""
    y, p = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    f = np.array([np.cos(p) * np.cos(y), np.cos(p) * np.sin(y), -np.sin(p)])
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.column_stack([right, up, -f]).reshape(-1))
    return q


def rig_cameras_xml() -> str:
    return "".join(
        f'<camera name="rig_{name}" pos="{_v(*pos)}" quat="{_v(*camera_quat(yaw, pitch))}" fovy="{fovy}"/>'
        for name, pos, yaw, pitch, fovy in RIG_CAMERAS
    )
HIDDEN_GROUP = 5  # the robot's geoms go here while a person demonstrates
ROBOT_GEOM_GROUP = 2


def marker_rgb(role: str) -> tuple[float, float, float]:
    """The marker's base colour: full saturation, value 0.25 (emission and light bring it up
    to at most ~0.95, so no channel clips and the hue holds under any lighting)."""
    return colorsys.hsv_to_rgb(MARKER_HUES[role] / 360.0, 1.0, 0.25)


@dataclass(frozen=True)
class Person:
    """Body measurements (metres) of one demonstrator; ``sample`` draws a plausible adult."""

    hip_height: float = 0.95
    torso: float = 0.50  # hip joint to the shoulder line
    shoulder_half_width: float = 0.19
    upper_arm: float = 0.30
    forearm: float = 0.26
    hand: float = 0.18  # wrist to the tip of the middle finger
    stand_x: float = -0.02  # where the hips are, behind the bench edge (x = 0.18)
    lean: float = 0.08  # forward lean of the torso at the bench (rad); more for far reaches
    skin: tuple[float, float, float] = (0.80, 0.62, 0.50)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Person":
        s = rng.uniform(0.92, 1.08)  # stature relative to an average adult
        return cls(
            hip_height=0.95 * s, torso=0.50 * s, shoulder_half_width=rng.uniform(0.17, 0.21) * s,
            upper_arm=rng.uniform(0.28, 0.32) * s, forearm=rng.uniform(0.24, 0.28) * s,
            hand=rng.uniform(0.17, 0.20) * s, stand_x=rng.uniform(-0.05, 0.01), lean=rng.uniform(0.04, 0.14),
            skin=tuple(float(c) for c in np.array([0.80, 0.62, 0.50]) * rng.uniform(0.6, 1.1)),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _v(*xs: float) -> str:
    return " ".join(f"{x:.5g}" for x in xs)


def _hand_xml(side: str, p: Person) -> str:
    """Palm and five fingers, hand frame at the wrist, fingers down (-z), pinch along y."""
    k = p.hand / 0.18
    palm_len, finger, thumb = 0.095 * k, 0.085 * k, 0.075 * k
    fingers = []
    for i, (name, x) in enumerate([("index", 0.027), ("middle", 0.009), ("ring", -0.009), ("pinky", -0.026)]):
        length = finger * (1.0, 1.08, 1.0, 0.8)[i]
        fingers.append(f"""
          <body name="h_{side}_{name}" pos="{_v(x * k, 0.012 * k, -palm_len)}">
            <joint name="h_{side}_{name}" axis="-1 0 0" range="-0.4 1.6"/>
            <geom type="capsule" fromto="0 0 0 {_v(0, 0, -length)}" size="{0.0085 * k:.4g}"/>
            {f'<site name="h_{side}_index_tip" pos="{_v(0, -0.004, -length)}" size="0.004"/>' if name == "index" else ""}
          </body>""")
    markers = {
        "wrist": (_v(0.038 * k + 0.004, 0.006, -0.02), "h_" + side + "_hand"),
        "knuckle": (_v(0.027 * k + 0.011, 0.012 * k, -palm_len + 0.004), "h_" + side + "_hand"),
    }
    m_xml = "".join(
        f'<geom name="m_{side}_{m}" type="sphere" size="{MARKER_RADIUS}" pos="{pos}" material="m_{m}" class="marker"/>'
        f'<site name="k_{side}_{m}" pos="{pos}" size="0.002"/>'
        for m, (pos, _) in markers.items()
    )
    return f"""
        <body name="h_{side}_hand" pos="{_v(0, 0, -p.forearm)}">
          <joint name="h_{side}_wrist_yaw" axis="0 0 1" range="-2.6 2.6"/>
          <joint name="h_{side}_wrist_pitch" axis="0 1 0" range="-1.4 1.4"/>
          <joint name="h_{side}_wrist_roll" axis="1 0 0" range="-1.0 1.0"/>
          <geom type="box" size="{_v(0.038 * k, 0.014 * k, palm_len / 2)}" pos="{_v(0, 0.006, -palm_len / 2)}"/>
          {m_xml}
          <site name="h_{side}_pinch" pos="{_v(0.025 * k, -0.006, -palm_len - 0.055 * k)}" size="0.004"/>
          {"".join(fingers)}
          <body name="h_{side}_thumb" pos="{_v(0.022 * k, -0.030 * k, -palm_len + 0.005)}">
            <joint name="h_{side}_thumb" axis="1 0 0" range="-0.4 1.4"/>
            <geom type="capsule" fromto="0 0 0 {_v(0, 0, -thumb)}" size="{0.010 * k:.4g}"/>
            <site name="h_{side}_thumb_tip" pos="{_v(0, 0, -thumb)}" size="0.004"/>
            <geom name="m_{side}_thumb_tip" type="sphere" size="{MARKER_RADIUS}" pos="{_v(0.008, -0.011, -0.75 * thumb)}"
                  material="m_thumb_tip" class="marker"/>
            <site name="k_{side}_thumb_tip" pos="{_v(0.008, -0.011, -0.75 * thumb)}" size="0.002"/>
          </body>
        </body>"""


def _index_tip_marker(xml: str, side: str, p: Person) -> str:
    """Put the index-tip marker on the index finger's outer side (away from the thumb, so a held
    object does not hide it), three quarters of the way to the tip."""
    k = p.hand / 0.18
    length = 0.085 * k
    tag = f'<site name="h_{side}_index_tip"'
    marker = (f'<geom name="m_{side}_index_tip" type="sphere" size="{MARKER_RADIUS}" pos="{_v(0.008, 0.011, -0.75 * length)}" '
              f'material="m_index_tip" class="marker"/><site name="k_{side}_index_tip" pos="{_v(0.008, 0.011, -0.75 * length)}" size="0.002"/>')
    return xml.replace(tag, marker + tag, 1)


def human_xml(p: Person) -> str:
    """The person as an MJCF document to include in the workcell."""
    arms = []
    for side, sign in (("right", -1), ("left", 1)):
        arm = f"""
      <body name="h_{side}_shoulder" pos="{_v(0, sign * p.shoulder_half_width, p.torso - 0.03)}">
        <joint name="h_{side}_shoulder_pitch" axis="0 1 0" range="-3.0 1.2"/>
        <joint name="h_{side}_shoulder_roll" axis="1 0 0" range="-1.6 1.6"/>
        <joint name="h_{side}_shoulder_yaw" axis="0 0 1" range="-1.8 1.8"/>
        <geom type="capsule" fromto="0 0 0 {_v(0, 0, -p.upper_arm)}" size="0.04" material="h_shirt"/>
        <body name="h_{side}_forearm" pos="{_v(0, 0, -p.upper_arm)}">
          <joint name="h_{side}_elbow" axis="0 1 0" range="-2.6 0.05"/>
          <geom type="capsule" fromto="0 0 0 {_v(0, 0, -p.forearm + 0.05)}" size="0.03" material="h_shirt"/>
          <geom type="capsule" fromto="{_v(0, 0, -p.forearm + 0.05, 0, 0, -p.forearm + 0.01)}" size="0.024"/>
          {_hand_xml(side, p)}
        </body>
      </body>"""
        arms.append(_index_tip_marker(arm, side, p))
    materials = "".join(
        f'<material name="m_{m}" rgba="{_v(*marker_rgb(m), 1)}" emission="2" specular="0" shininess="0"/>'
        for m in MARKER_SITES
    )
    return f"""<mujoco model="human_demonstrator">
  <default>
    <default class="human">
      <geom contype="0" conaffinity="0" group="1" material="h_skin"/>
      <site group="4" rgba="1 0 1 0.3"/>
      <default class="marker">
        <geom contype="0" conaffinity="0" group="1"/>
      </default>
    </default>
  </default>
  <asset>
    <material name="h_skin" rgba="{_v(*p.skin, 1)}"/>
    <material name="h_shirt" rgba="0.22 0.24 0.30 1"/>
    <material name="h_helmet" rgba="0.12 0.12 0.13 1"/>
    {materials}
  </asset>
  <worldbody>
    <body name="h_pelvis" pos="{_v(p.stand_x, 0, p.hip_height)}" childclass="human">
      <geom type="capsule" fromto="0 -0.10 0 0 0.10 0" size="0.09" material="h_shirt"/>
      <body name="h_torso">
        <joint name="h_waist_yaw" axis="0 0 1" range="-0.8 0.8"/>
        <joint name="h_waist_pitch" axis="0 1 0" range="-0.3 0.9"/>
        <geom type="capsule" fromto="{_v(0, 0, 0.08, 0, 0, p.torso - 0.08)}" size="0.13" material="h_shirt"/>
        <geom type="capsule" fromto="{_v(0, -p.shoulder_half_width, p.torso - 0.03, 0, p.shoulder_half_width, p.torso - 0.03)}"
              size="0.05" material="h_shirt"/>
        <body name="h_head" pos="{_v(0, 0, p.torso + 0.06)}">
          <joint name="h_neck_yaw" axis="0 0 1" range="-1.3 1.3"/>
          <joint name="h_neck_pitch" axis="0 1 0" range="-0.6 1.0"/>
          <geom type="capsule" fromto="0 0 -0.05 0 0 0.02" size="0.05"/>
          <geom type="sphere" size="0.095" pos="0.01 0 0.12"/>
          <geom type="ellipsoid" size="0.11 0.105 0.06" pos="0.0 0 0.19" material="h_helmet"/>
          <site name="h_rig" pos="{_v(*RIG_ORIGIN)}" size="0.01"/>
          {rig_cameras_xml()}
        </body>
        {"".join(arms)}
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def arm_joint_names(side: str) -> tuple[str, ...]:
    return tuple(f"h_{side}_{j}" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow",
                                               "wrist_yaw", "wrist_pitch", "wrist_roll"))


def finger_joint_names(side: str) -> tuple[str, ...]:
    return tuple(f"h_{side}_{f}" for f in ("thumb", "index", "middle", "ring", "pinky"))


JOINTS: tuple[str, ...] = (("h_waist_yaw", "h_waist_pitch", "h_neck_yaw", "h_neck_pitch")
                           + arm_joint_names("right") + finger_joint_names("right")
                           + arm_joint_names("left") + finger_joint_names("left"))


@functools.cache
def _scene_text() -> str:
    text = SCENE_XML.read_text()
    if '<include file="robot.xml"/>' not in text:
        raise RuntimeError(f"{SCENE_XML} no longer includes robot.xml; the human scene needs it")
    return text.replace('<include file="robot.xml"/>', '<include file="robot.xml"/>\n  <include file="human.xml"/>')


def scene_model(p: Person, width: int = 320, height: int = 240) -> mujoco.MjModel:
    """The workcell with the person in it and the robot hidden (geom group ``HIDDEN_GROUP``)."""
    text = _scene_text().replace('offwidth="640" offheight="480"', f'offwidth="{max(640, width)}" offheight="{max(480, height)}"')
    model = mujoco.MjModel.from_xml_string(text, assets={
        "robot.xml": (ASSETS / "robot.xml").read_bytes(), "human.xml": human_xml(p).encode(),
    })
    human_bodies = {model.body(n).id for n in range(model.nbody) if model.body(n).name.startswith("h_")}
    for g in range(model.ngeom):
        if model.geom_group[g] == ROBOT_GEOM_GROUP or model.geom(g).name == "stand":
            if model.geom_bodyid[g] not in human_bodies:
                model.geom_group[g] = HIDDEN_GROUP
    return model
