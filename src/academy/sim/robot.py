"""The Academy humanoid (AH-1): names and groupings of its joints and actuators.

The MJCF in ``assets/robot.xml`` is the source of truth; this module only names what is in it.
Actuators and actuated joints share names and order, so an action vector is indexed by ``JOINTS``.
"""

from __future__ import annotations

SIDES = ("right", "left")

TORSO_JOINTS = ("waist_yaw", "waist_pitch")
HEAD_JOINTS = ("neck_yaw", "neck_pitch")
ARM_JOINT_SUFFIXES = (
    "shoulder_pitch",
    "shoulder_roll",
    "shoulder_yaw",
    "elbow",
    "wrist_yaw",
    "wrist_pitch",
    "wrist_roll",
)
HAND_JOINT_SUFFIXES = ("thumb", "index", "middle", "index_tip", "middle_tip")


def arm_joints(side: str) -> tuple[str, ...]:
    """The seven arm joints of one side, shoulder to wrist."""
    return tuple(f"{side}_{s}" for s in ARM_JOINT_SUFFIXES)


def hand_joints(side: str) -> tuple[str, ...]:
    """The five hand joints of one side: three finger slides, two fingertip hinges."""
    return tuple(f"{side}_{s}" for s in HAND_JOINT_SUFFIXES)


JOINTS: tuple[str, ...] = (
    TORSO_JOINTS
    + HEAD_JOINTS
    + arm_joints("right")
    + hand_joints("right")
    + arm_joints("left")
    + hand_joints("left")
)
N_ACTUATORS = len(JOINTS)  # 28

# Finger slide travel (m): 0 is open, FINGER_CLOSED drives the pads to the hand's mid-plane,
# so a held object stops them short and the position servo squeezes it.
FINGER_OPEN = 0.0
FINGER_CLOSED = 0.04
GRASP_SITE = {side: f"{side}_grasp" for side in SIDES}
HEAD_CAMERAS = ("head_left", "head_right")
WRIST_CAMERAS = ("right_wrist", "left_wrist")
CAMERAS = HEAD_CAMERAS + WRIST_CAMERAS + ("overview",)

# Home posture, in JOINTS order: head tilted 0.4 rad down at the bench, hands pointing down
# at (0.26, +-0.30, 1.04) m, beside the work area and out of the other arm's way.
# Found once with academy.sim.experts.ik.ArmIK; tests/sim/test_robot.py checks the hand positions.
HOME: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.4,
    0.0345, -0.4985, -0.1186, -2.105, -0.2091, 2.0837, 0.319, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0345, 0.4985, 0.1186, -2.105, 0.2091, 2.0837, -0.319, 0.0, 0.0, 0.0, 0.0, 0.0,
)  # fmt: skip
HOME_HAND_POS = {"right": (0.26, -0.30, 1.04), "left": (0.26, 0.30, 1.04)}
