"""The world model: an ensemble of networks that predict the workcell's next step.

Input: the robot's state (joint positions and velocities, 56), the object poses (11 x 7), the
task's goal (40), the commanded joint targets (28) and a physical context vector (``CONTEXT``:
friction, object mass and size scale factors, 1.0 nominal). With ``hand_features`` the
network also sees where the hands are: both grasp sites' positions from exact forward
kinematics, every object's position relative to each hand, and the command minus the measured
joints. Output, per member: the change of state and object poses to the next control step, the
step's reward, logits for "the episode ends here" and "it ends in success", and with
``gate_objects`` a logit per object for "it moves in this step": an object judged still keeps its
pose exactly, so resting objects do not drift. Members differ by initialisation and by their
bootstrap batches; their spread is the model's uncertainty.

Saved as a folder: ``config.json``, ``weights.pt`` (normalisation inside), ``fit.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from academy.sim.randomize import CONTEXT_TERMS as CONTEXT, NOMINAL_CONTEXT  # noqa: F401 (re-exported)

STATE, ENV, GOAL, ACTION = "observation.state", "observation.environment_state", "observation.goal", "action"
EXECUTED = "action.executed"  # the command sent, noise included: what the model is conditioned on where recorded
CONTEXT_KEY = "observation.context"
DIMS = {STATE: 56, ENV: 77, GOAL: 40, ACTION: 28}
X_DIM = DIMS[STATE] + DIMS[ENV]  # what the model rolls forward
N_JOINTS = DIMS[STATE] // 2
N_OBJECTS = DIMS[ENV] // 7
HAND_DIM = 2 * 3 + N_OBJECTS * 2 * 3 + N_JOINTS  # hand positions, objects from each hand, command - joints


@dataclass
class WorldModelConfig:
    members: int = 5
    hidden: int = 384
    layers: int = 3
    hand_features: bool = True
    gate_objects: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class Normaliser(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-4))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


def _mlp(n_in: int, n_out: int, hidden: int, layers: int) -> nn.Sequential:
    mods, d = [], n_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, n_out))
    return nn.Sequential(*mods)


class WorldModel(nn.Module):
    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        n_in = X_DIM + DIMS[GOAL] + DIMS[ACTION] + len(CONTEXT) + (HAND_DIM if cfg.hand_features else 0)
        # delta, reward, end logit, success logit, then a "moves" logit per object
        self.n_out = X_DIM + 3 + (N_OBJECTS if cfg.gate_objects else 0)
        self.members = nn.ModuleList(_mlp(n_in, self.n_out, cfg.hidden, cfg.layers) for _ in range(cfg.members))
        self.x_norm, self.goal_norm, self.action_norm = Normaliser(X_DIM), Normaliser(DIMS[GOAL]), Normaliser(DIMS[ACTION])
        self.hand_norm = Normaliser(HAND_DIM)
        self.delta_norm = Normaliser(X_DIM)
        self.register_buffer("reward_scale", torch.ones(()))
        if cfg.hand_features:
            from academy.learn.kinematics import HandFK
            from academy.sim.world import load_model

            self.fk = HandFK(HandFK.specs(load_model()))

    def hand_features(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Both hands' positions, each object's position from each hand, command minus joints."""
        q = x[:, :N_JOINTS]
        hands, _ = self.fk(q)  # (B, 2, 3)
        objects = x[:, DIMS[STATE]:].reshape(len(x), N_OBJECTS, 7)[..., :3]
        rel = objects[:, :, None, :] - hands[:, None, :, :]
        return torch.cat([hands.reshape(len(x), -1), rel.reshape(len(x), -1), action - q], -1)

    def inputs(self, x, goal, action, context) -> torch.Tensor:
        parts = [self.x_norm(x), self.goal_norm(goal), self.action_norm(action), context - 1.0]
        if self.cfg.hand_features:
            parts.append(self.hand_norm(self.hand_features(x, action)))
        return torch.cat(parts, -1)

    def raw(self, x, goal, action, context) -> torch.Tensor:
        """(members, batch, n_out) in normalised units."""
        inp = self.inputs(x, goal, action, context)
        return torch.stack([m(inp) for m in self.members])

    def delta(self, out: torch.Tensor) -> torch.Tensor:
        """The normalised change of x from raw outputs (..., n_out), objects judged still held at zero."""
        delta = out[..., :X_DIM]
        if not self.cfg.gate_objects:
            return delta
        moves = (out[..., X_DIM + 3:] > 0).to(delta.dtype)  # (..., N_OBJECTS)
        still = self.delta_norm(torch.zeros(X_DIM))  # a zero change, in normalised units
        gate = torch.cat([torch.ones_like(delta[..., :DIMS[STATE]]), moves.repeat_interleave(7, -1)], -1)
        return gate * delta + (1 - gate) * still

    @torch.no_grad()
    def step(self, x, goal, action, context, member: torch.Tensor | None = None) -> dict:
        """One step for a batch. ``member``: which member each row follows (a random member per
        row, as in trajectory sampling); None: the ensemble mean. Returns next x, reward, end and
        success probabilities, and the uncertainty (members' spread of the normalised delta)."""
        out = self.raw(x, goal, action, context)
        delta = self.delta(out)
        mean = delta.mean(0)
        # the members' spread; by hand, as Tensor.std over the first dim is ~10x slower here
        spread = (((delta - mean) ** 2).sum(0) / max(len(self.members) - 1, 1)).sqrt().mean(-1)
        if member is None:
            pick, change = out.mean(0), mean
        else:
            rows = torch.arange(x.shape[0])
            pick, change = out[member, rows], delta[member, rows]
        nxt = x + self.delta_norm.inverse(change)
        nxt = renormalise_quaternions(nxt)
        return {"x": nxt, "reward": pick[:, X_DIM] * self.reward_scale, "end": torch.sigmoid(pick[:, X_DIM + 1]),
                "success": torch.sigmoid(pick[:, X_DIM + 2]), "uncertainty": spread}

    # ------------------------------------------------------------------ files
    def save(self, out: str | Path, fit_info: dict) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
        torch.save(self.state_dict(), out / "weights.pt")
        (out / "fit.json").write_text(json.dumps(fit_info, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path) -> "WorldModel":
        path = Path(path)
        for name in ("config.json", "weights.pt"):
            if not (path / name).exists():
                raise FileNotFoundError(f"{path} is not a world model: {name} missing")
        model = cls(WorldModelConfig(**json.loads((path / "config.json").read_text())))
        model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
        model.eval()
        return model


def renormalise_quaternions(x: torch.Tensor) -> torch.Tensor:
    """Object quaternions (w, x, y, z after each position) back to unit length."""
    env = x[:, DIMS[STATE]:].reshape(x.shape[0], -1, 7)
    q = env[..., 3:]
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return torch.cat([x[:, :DIMS[STATE]], torch.cat([env[..., :3], q], -1).reshape(x.shape[0], -1)], -1)
