"""The residual actor-critic that practice trains on top of a frozen learned policy.

The learned (imitation) policy keeps choosing chunks and ensembling them; practice adds a
small per-step correction to the joint targets it returns:

    executed = base + scale * a,   a ~ Normal(mu(x), sigma)   (mu at deployment)

where ``x`` is the observation, the task and the base action (and its offset from the measured
joints). The actor's last layer starts at zero, so before any update the practiced policy is
exactly the imitation policy; ``scale`` bounds how far practice may move a joint (0.5% of its
range per unit of ``a``). This is residual RL on a chunked imitation policy (Ankile et al.
2024, "From Imitation to Refinement"): the base carries the long-horizon behaviour, RL only
learns the closed-loop precision that imitation lacks.

Files in a practiced policy folder, beside the base checkpoint's: ``residual.json`` (the
sizes) and ``residual.pt`` (the state dict, with the feature normaliser's statistics).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from academy.learn.model import ENV_KEY, GOAL_KEY, STATE_KEY

ACTION_DIM = 28
SCALE_FRACTION = 0.005  # joints space: one unit of residual = 0.5% of a joint's control range
HAND_STEP = 0.005  # hands space: one unit moves a grasp site 5 mm
GRIP_STEP = 0.002  # and a hand's three finger slides 2 mm
SPACES = ("hands", "joints")


class HandFrame:
    """The nominal robot's kinematics at the base's commanded joints: grasp-site positions (for
    hand-relative features) and position Jacobians (to turn a hand offset into joint offsets)."""

    def __init__(self):
        import mujoco

        from academy.sim import robot
        from academy.sim.world import load_model

        self.mj = mujoco
        self.model = load_model()
        self.data = mujoco.MjData(self.model)
        jid = [self.model.joint(j).id for j in robot.JOINTS]
        self.qpos_adr = self.model.jnt_qposadr[jid]
        self.sites = [self.model.site(robot.GRASP_SITE[s]).id for s in robot.SIDES]
        self.arm = [np.array([robot.JOINTS.index(j) for j in robot.arm_joints(s)]) for s in robot.SIDES]
        self.fingers = [np.array([robot.JOINTS.index(f"{s}_{f}") for f in ("thumb", "index", "middle")]) for s in robot.SIDES]
        dof = self.model.jnt_dofadr[jid]
        self.arm_dof = [dof[a] for a in self.arm]
        self._jac = np.zeros((3, self.model.nv))

    def poses(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 2, 3) grasp-site positions and (B, 2, 3, 7) arm position Jacobians at joints ``q``."""
        B = len(q)
        pos, jac = np.zeros((B, 2, 3)), np.zeros((B, 2, 3, 7))
        m, d = self.model, self.data
        for b in range(B):
            d.qpos[self.qpos_adr] = q[b]
            self.mj.mj_kinematics(m, d)
            self.mj.mj_comPos(m, d)
            for s, site in enumerate(self.sites):
                pos[b, s] = d.site_xpos[site]
                self.mj.mj_jacSite(m, d, self._jac, None, site)
                jac[b, s] = self._jac[:, self.arm_dof[s]]
        return pos, jac

    def to_joints(self, jac: np.ndarray, delta: np.ndarray, damping: float = 0.02) -> np.ndarray:
        """(B, 8) hand offsets (m: x, y, z, grip per side) -> (B, 28) joint offsets (damped least squares)."""
        out = np.zeros((len(delta), ACTION_DIM))
        for s in range(2):
            J = jac[:, s]  # (B, 3, 7)
            jjt = J @ J.transpose(0, 2, 1) + damping**2 * np.eye(3)
            dx = delta[:, 4 * s : 4 * s + 3, None]
            out[:, self.arm[s]] = (J.transpose(0, 2, 1) @ np.linalg.solve(jjt, dx))[..., 0]
            out[:, self.fingers[s]] = delta[:, 4 * s + 3 : 4 * s + 4]
        return out


def feature_dim(n_tasks: int, obs_dims: dict[str, int]) -> int:
    n_objects = obs_dims[ENV_KEY] // 7
    hands = 2 * 3 + 2 * 3 * n_objects
    return obs_dims[STATE_KEY] + obs_dims[ENV_KEY] + obs_dims[GOAL_KEY] + n_tasks + 2 * ACTION_DIM + hands


def features(obs: dict, base: np.ndarray, n_tasks: int, hand_pos: np.ndarray) -> np.ndarray:
    """(B, F) float32: state, objects, goal, task one-hot, base action, base minus measured joints,
    the commanded grasp sites and every object's position minus each of them."""
    state = np.asarray(obs[STATE_KEY], np.float32)
    task = np.asarray(obs["task"]).astype(int).reshape(-1)
    onehot = np.eye(n_tasks, dtype=np.float32)[task]
    base = np.asarray(base, np.float32)
    objects = np.asarray(obs[ENV_KEY], np.float32)
    xyz = objects.reshape(len(objects), -1, 7)[:, :, :3]
    relative = xyz[:, None, :, :] - hand_pos[:, :, None, :]  # (B, 2 hands, objects, 3)
    return np.concatenate(
        [state, objects, np.asarray(obs[GOAL_KEY], np.float32), onehot, base, base - state[:, :ACTION_DIM],
         hand_pos.reshape(len(base), -1), relative.reshape(len(base), -1)], axis=1,
    ).astype(np.float32)


class RunningNorm(nn.Module):
    """Feature standardisation from running statistics (updated by the learner between updates)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def update(self, x: np.ndarray) -> None:
        x = torch.as_tensor(np.asarray(x, np.float64).reshape(-1, self.mean.shape[0]))
        n, m, v = x.shape[0], x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = m - self.mean
        self.var.copy_((self.var * self.count + v * n + delta**2 * self.count * n / total) / total)
        self.mean.copy_(self.mean + delta * n / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean.float()) / torch.sqrt(self.var.float() + 1e-4)
        return z.clamp(-5.0, 5.0)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ELU()]
    return nn.Sequential(*layers[:-1])


class ResidualActorCritic(nn.Module):
    """``space`` "hands": 8 outputs (each grasp site's x, y, z offset and its grip, in units of
    ``scale``: 5 mm, 2 mm), turned into joint offsets through the arm Jacobians at the base's
    command; "joints": 28 outputs, one per joint (``scale`` per joint)."""

    def __init__(self, feat_dim: int, n_tasks: int, scale: np.ndarray, hidden: int = 256, init_std: float = 0.3,
                 space: str = "hands"):
        super().__init__()
        if space not in SPACES:
            raise ValueError(f"residual space must be one of {SPACES}, got '{space}'")
        self.sizes = {"feat_dim": feat_dim, "n_tasks": n_tasks, "hidden": hidden, "init_std": init_std, "space": space}
        self.space = space
        self.action_dim = 8 if space == "hands" else ACTION_DIM
        self.frame = HandFrame()
        self.norm = RunningNorm(feat_dim)
        self.actor = _mlp([feat_dim, hidden, hidden, self.action_dim])
        self.critic = _mlp([feat_dim, hidden, hidden, 1])
        nn.init.zeros_(self.actor[-1].weight)
        nn.init.zeros_(self.actor[-1].bias)
        self.log_std = nn.Parameter(torch.full((self.action_dim,), float(np.log(init_std))))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float32)))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean residual in units of ``scale``, value)."""
        z = self.norm(feats)
        return self.actor(z), self.critic(z).squeeze(-1)

    def distribution(self, mu: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(mu, self.log_std.exp().expand_as(mu))

    def observe(self, obs: dict, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, Jacobians) for an observation batch and the base's joint targets."""
        pos, jac = self.frame.poses(np.asarray(base, float))
        return features(obs, base, self.sizes["n_tasks"], pos.astype(np.float32)), jac

    def delta(self, a: np.ndarray, jac: np.ndarray) -> np.ndarray:
        """Residual outputs (B, action_dim) -> joint offsets (B, 28)."""
        d = np.asarray(a, float) * self.scale.numpy()
        return self.frame.to_joints(jac, d) if self.space == "hands" else d

    @torch.inference_mode()
    def correct(self, obs: dict, base: np.ndarray) -> np.ndarray:
        """Deterministic practiced joint targets: base + the mean residual's joint offsets."""
        feats, jac = self.observe(obs, base)
        mu, _ = self(torch.as_tensor(feats))
        return np.asarray(base) + self.delta(mu.numpy(), jac)


def default_scale(space: str) -> np.ndarray:
    if space == "hands":
        return np.array([HAND_STEP] * 3 + [GRIP_STEP] + [HAND_STEP] * 3 + [GRIP_STEP])
    from academy.sim.world import Workcell, load_model

    ctrl = Workcell(load_model()).ctrl_range
    return SCALE_FRACTION * (ctrl[:, 1] - ctrl[:, 0])


def save_residual(out: str | Path, net: ResidualActorCritic) -> None:
    out = Path(out)
    (out / "residual.json").write_text(json.dumps({**net.sizes, "scale": net.scale.tolist()}, indent=2))
    torch.save(net.state_dict(), out / "residual.pt")


def load_residual(path: str | Path) -> ResidualActorCritic | None:
    """The residual in a policy folder, or None if the folder holds an imitation policy only."""
    path = Path(path)
    if not (path / "residual.json").exists():
        return None
    if not (path / "residual.pt").exists():
        raise FileNotFoundError(f"{path}: residual.json without residual.pt; the practiced policy is incomplete")
    sizes = json.loads((path / "residual.json").read_text())
    scale = sizes.pop("scale")
    net = ResidualActorCritic(scale=np.asarray(scale), **sizes)
    net.load_state_dict(torch.load(path / "residual.pt", map_location="cpu", weights_only=True))
    return net.eval()
