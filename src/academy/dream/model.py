"""The world model: an ensemble of networks that predict the workcell's next step.

Input: the robot's state (joint positions and velocities, 56), the object poses (11 x 7), the
task's goal (40), the commanded joint targets (28) and a physical context vector (``CONTEXT``:
scale factors, 1.0 nominal). Output, per member: the change of state and object poses to the
next control step, the step's reward, and logits for "the episode ends here" and "it ends in
success". Members differ by initialisation and by the order and bootstrap of their batches;
their spread is the model's uncertainty.

Saved as a folder: ``config.json``, ``weights.pt`` (normalisation inside), ``fit.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

STATE, ENV, GOAL, ACTION = "observation.state", "observation.environment_state", "observation.goal", "action"
DIMS = {STATE: 56, ENV: 77, GOAL: 40, ACTION: 28}
CONTEXT = ("friction", "object_mass")  # scale factors of the physics; 1.0 is the nominal workcell
NOMINAL_CONTEXT = (1.0, 1.0)
X_DIM = DIMS[STATE] + DIMS[ENV]  # what the model rolls forward


@dataclass
class WorldModelConfig:
    members: int = 5
    hidden: int = 384
    layers: int = 3

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
        n_in = X_DIM + DIMS[GOAL] + DIMS[ACTION] + len(CONTEXT)
        self.n_out = X_DIM + 3  # delta, reward, end logit, success logit
        self.members = nn.ModuleList(_mlp(n_in, self.n_out, cfg.hidden, cfg.layers) for _ in range(cfg.members))
        self.x_norm, self.goal_norm, self.action_norm = Normaliser(X_DIM), Normaliser(DIMS[GOAL]), Normaliser(DIMS[ACTION])
        self.delta_norm = Normaliser(X_DIM)
        self.register_buffer("reward_scale", torch.ones(()))

    def inputs(self, x, goal, action, context) -> torch.Tensor:
        return torch.cat([self.x_norm(x), self.goal_norm(goal), self.action_norm(action), context - 1.0], -1)

    def raw(self, x, goal, action, context) -> torch.Tensor:
        """(members, batch, n_out) in normalised units."""
        inp = self.inputs(x, goal, action, context)
        return torch.stack([m(inp) for m in self.members])

    @torch.no_grad()
    def step(self, x, goal, action, context, member: torch.Tensor | None = None) -> dict:
        """One step for a batch. ``member``: which member each row follows (a random member per
        row, as in trajectory sampling); None: the ensemble mean. Returns next x, reward, end and
        success probabilities, and the uncertainty (members' spread of the normalised delta)."""
        out = self.raw(x, goal, action, context)
        delta = out[..., :X_DIM]
        spread = delta.std(0).mean(-1) if len(self.members) > 1 else torch.zeros(x.shape[0])
        if member is None:
            pick = out.mean(0)
        else:
            pick = out[member, torch.arange(x.shape[0])]
        nxt = x + self.delta_norm.inverse(pick[:, :X_DIM])
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
