"""Forward kinematics of the robot's grasp sites as a torch module (for the policy's inputs).

A learned policy that sees only joint angles must learn the arm's forward kinematics before it
can relate its hand to a part a few millimetres away. This module computes the hands' poses
from joint angles exactly, inside the network's graph, so exported checkpoints (torch.export,
ONNX) carry it and need no MuJoCo. Its constants (each link's offset, each joint's axis and
anchor) are read once from the MJCF model and stored as plain lists in the policy's config.

It follows MuJoCo's own kinematics (``mj_kinematics``) for the chain of hinge joints from the
robot's root body to a site: body frame = parent frame x (body_pos, body_quat), then each
hinge rotates about its axis through its anchor by (q - qpos0), then the site's offset.
"""

from __future__ import annotations

import mujoco
import torch
from torch import nn

from academy.sim import robot


def chain_spec(model: mujoco.MjModel, site: str) -> dict:
    """The constants of the kinematic chain from the world to ``site``, as JSON-able lists."""
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
    if sid < 0:
        raise ValueError(f"model has no site '{site}'")
    bodies = []
    b = int(model.site_bodyid[sid])
    while b != 0:
        bodies.append(b)
        b = int(model.body_parentid[b])
    links = []
    for b in reversed(bodies):
        joints = []
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
            if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or name not in robot.JOINTS:
                raise ValueError(f"joint '{name}' on the chain to '{site}' is not one of the robot's hinges")
            joints.append({"index": robot.JOINTS.index(name), "axis": model.jnt_axis[j].tolist(),
                           "anchor": model.jnt_pos[j].tolist(), "qpos0": float(model.qpos0[model.jnt_qposadr[j]])})
        links.append({"pos": model.body_pos[b].tolist(), "quat": model.body_quat[b].tolist(), "joints": joints})
    return {"site": site, "links": links, "site_pos": model.site_pos[sid].tolist(), "site_quat": model.site_quat[sid].tolist()}


def _quat_mat(q) -> torch.Tensor:
    w, x, y, z = (float(v) for v in q)
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float32)


class ChainFK(nn.Module):
    """joint vector (B, 28) -> site position (B, 3) and rotation matrix (B, 3, 3), world frame."""

    def __init__(self, spec: dict):
        super().__init__()
        offsets_p, offsets_r, index, axis, anchor, qpos0, link_of_joint = [], [], [], [], [], [], []
        for li, link in enumerate(spec["links"]):
            offsets_p.append(torch.tensor(link["pos"], dtype=torch.float32))
            offsets_r.append(_quat_mat(link["quat"]))
            for j in link["joints"]:
                index.append(j["index"])
                axis.append(j["axis"])
                anchor.append(j["anchor"])
                qpos0.append(j["qpos0"])
                link_of_joint.append(li)
        self.register_buffer("link_pos", torch.stack(offsets_p))
        self.register_buffer("link_rot", torch.stack(offsets_r))
        self.register_buffer("index", torch.tensor(index, dtype=torch.long))
        self.register_buffer("axis", torch.tensor(axis, dtype=torch.float32))
        self.register_buffer("anchor", torch.tensor(anchor, dtype=torch.float32))
        self.register_buffer("qpos0", torch.tensor(qpos0, dtype=torch.float32))
        self.register_buffer("site_pos", torch.tensor(spec["site_pos"], dtype=torch.float32))
        self.register_buffer("site_rot", _quat_mat(spec["site_quat"]))
        self.link_of_joint = link_of_joint
        self.n_links = len(spec["links"])

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = q.shape[0]
        angles = q[:, self.index] - self.qpos0  # (B, J)
        c, s = torch.cos(angles)[..., None, None], torch.sin(angles)[..., None, None]
        k = self.axis  # (J, 3), unit axes in the link frame
        K = torch.zeros(len(self.link_of_joint), 3, 3, dtype=q.dtype, device=q.device)
        K[:, 0, 1], K[:, 0, 2], K[:, 1, 0] = -k[:, 2], k[:, 1], k[:, 2]
        K[:, 1, 2], K[:, 2, 0], K[:, 2, 1] = -k[:, 0], -k[:, 1], k[:, 0]
        eye = torch.eye(3, dtype=q.dtype, device=q.device)
        rot_j = eye + s * K + (1 - c) * (K @ K)  # Rodrigues, (B, J, 3, 3)
        pos = torch.zeros(B, 3, dtype=q.dtype, device=q.device)
        rot = eye.expand(B, 3, 3)
        j = 0
        for li in range(self.n_links):
            pos = pos + rot @ self.link_pos[li]
            rot = rot @ self.link_rot[li]
            while j < len(self.link_of_joint) and self.link_of_joint[j] == li:
                # rotate about the anchor: p' = p + R a - R Rj a
                a = self.anchor[j]
                pos = pos + rot @ a
                rot = rot @ rot_j[:, j]
                pos = pos - rot @ a
                j += 1
        pos = pos + rot @ self.site_pos
        return pos, rot @ self.site_rot


class HandFK(nn.Module):
    """Both grasp sites: (B, 28) joints -> positions (B, 2, 3) and rotations (B, 2, 3, 3), in ``robot.SIDES`` order."""

    def __init__(self, specs: list[dict]):
        super().__init__()
        self.chains = nn.ModuleList(ChainFK(s) for s in specs)

    @staticmethod
    def specs(model: mujoco.MjModel) -> list[dict]:
        return [chain_spec(model, robot.GRASP_SITE[side]) for side in robot.SIDES]

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = [c(q) for c in self.chains]
        return torch.stack([p for p, _ in out], 1), torch.stack([r for _, r in out], 1)
