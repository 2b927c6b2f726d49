"""The policy network: one network for every skill, predicting chunks of future actions.

Inputs are the dataset's observation features (state mode: joint positions, object poses, goal
vector), the previous action (the action last commanded, in the network's action space), a
learned task embedding and an instruction-embedding slot (zeros until the command stage fills
it). Output: ``chunk`` future actions, predicted as offsets from the previous action
(normalised per chunk step), which keeps millimetre-scale precision within the network's
output resolution. The action space is joint targets or hand poses (``learn/actions.py``).
Two bodies share the interface:

- ``mlp``: the inputs concatenated through a residual MLP (default: see docs/learn.md for the
  measurement that chose it);
- ``transformer``: an ACT-like encoder over input tokens with one learned query per chunk step.

Normalisation (mean/std from the dataset's stats) lives inside the module, so an exported
checkpoint maps raw observations to raw actions with nothing else. Input scales are over every
frame (``input_norm="pooled"``) or each task's own (``"task"``: a row per task, picked by the
task index).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from academy.data.collect import ACTION_KEY, ENV_KEY, GOAL_KEY, STATE_KEY
from academy.learn.actions import HAND_POS, PASS_INDEX, HandActions, action_dim

OBS_KEYS = (STATE_KEY, ENV_KEY, GOAL_KEY)
INSTRUCTION_DIM = 64  # width of the instruction-text embedding slot (filled by the command stage)


@dataclass
class PolicyConfig:
    obs_dims: dict[str, int]
    action_dim: int
    tasks: list[str]  # task names, in the order of the embedding rows
    arch: str = "mlp"
    chunk: int = 10
    hidden: int = 512
    layers: int = 3
    task_dim: int = 32
    heads: int = 4
    dropout: float = 0.0
    state_dims: int = 28  # leading entries of observation.state the network sees (joint positions only);
    # with hand actions only the non-arm joints of these (an arm's posture is the IK's business)
    fps: int = 20
    actions: str = "joints"  # the network's action space: joints or hands (learn/actions.py)
    kinematics: list | None = None  # the hands' FK chains (kinematics.chain_spec), for hand actions
    input_norm: str = "pooled"  # input scales over every frame ("pooled") or each task's own ("task")
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def net_action_dim(cfg: PolicyConfig) -> int:
    """Width of the network's actions (the previous-action input and each chunk step)."""
    return action_dim(cfg.actions, cfg.action_dim)


def relative_dim(cfg: PolicyConfig) -> int:
    """Width of the hand-relative inputs (hand actions only): for each commanded hand, every
    object's position and the goal's target x, y relative to it."""
    return 2 * (3 * (cfg.obs_dims[ENV_KEY] // 7) + 2) if cfg.actions == "hands" else 0


def placeholder_stats(cfg: PolicyConfig) -> dict[str, dict[str, torch.Tensor]]:
    """Stats of the right shapes (zeros, ones), to build a module before loading its weights."""
    A = net_action_dim(cfg)
    lead = (len(cfg.tasks),) if cfg.input_norm == "task" else ()  # per-task input scales: a row per task
    shapes = {**{k: (*lead, d) for k, d in cfg.obs_dims.items()}, "action": (*lead, A), "delta": (cfg.chunk, A),
              "relative": (relative_dim(cfg),)}
    return {k: {"mean": torch.zeros(s), "std": torch.ones(s)} for k, s in shapes.items()}


class Normalizer(nn.Module):
    """(x - mean) / std; with per-task scales (mean, std of shape (tasks, dim)) each row's task's."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, per_task: bool = False):
        super().__init__()
        if per_task and mean.dim() != 2:
            raise ValueError(f"per-task scales need a (tasks, dim) mean, got shape {tuple(mean.shape)}")
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float().clamp_min(1e-3))
        self.per_task = per_task

    def forward(self, x: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_task:
            if task is None:
                raise ValueError("these inputs are scaled per task: pass each row's task index")
            return (x - self.mean[task]) / self.std[task]
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean

    def scale(self, task: torch.Tensor) -> torch.Tensor:
        """The std that applies to each row: its task's with per-task scales, else the pooled one."""
        return self.std[task] if self.per_task else self.std


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ChunkPolicy(nn.Module):
    """raw observations (+ task index, instruction embedding, previous action) -> raw action
    chunk (B, chunk, A), A the width of the network's action space."""

    def __init__(self, cfg: PolicyConfig, stats: dict[str, dict[str, torch.Tensor]]):
        """``stats``: mean/std per observation key, ``action`` (in the network's action space),
        and ``delta`` ((chunk, A): the offsets of the next actions from the previous one)."""
        super().__init__()
        self.cfg = cfg
        per_task = cfg.input_norm == "task"
        self.norm = nn.ModuleDict({k.replace(".", "_"): Normalizer(stats[k]["mean"], stats[k]["std"], per_task)
                                   for k in OBS_KEYS})
        self.action_norm = Normalizer(stats[ACTION_KEY]["mean"], stats[ACTION_KEY]["std"], per_task)
        self.delta_norm = Normalizer(stats["delta"]["mean"], stats["delta"]["std"])
        self.task_embedding = nn.Embedding(len(cfg.tasks), cfg.task_dim)
        seen = [i for i in range(cfg.state_dims) if cfg.actions != "hands" or i in PASS_INDEX]
        self.register_buffer("state_index", torch.tensor(seen, dtype=torch.long), persistent=False)  # from cfg
        self.dims = {k: (len(seen) if k == OBS_KEYS[0] else cfg.obs_dims[k]) for k in OBS_KEYS}
        if cfg.input_norm not in ("pooled", "task"):
            raise ValueError(f"unknown input normalisation {cfg.input_norm!r}: choose pooled or task")
        if cfg.actions == "hands" and not cfg.kinematics:
            raise ValueError("hand actions need the hands' kinematic chains (PolicyConfig.kinematics)")
        self.hands = HandActions(cfg.kinematics) if cfg.actions == "hands" else None
        A, K, H = net_action_dim(cfg), cfg.chunk, cfg.hidden
        R = relative_dim(cfg)
        if R:
            self.relative_norm = Normalizer(stats["relative"]["mean"], stats["relative"]["std"])
        in_dim = sum(self.dims.values()) + R + A + cfg.task_dim + INSTRUCTION_DIM
        if cfg.arch == "mlp":
            self.body = nn.Sequential(
                nn.Linear(in_dim, H), *[ResidualBlock(H, cfg.dropout) for _ in range(cfg.layers)], nn.LayerNorm(H),
                nn.Linear(H, K * A),
            )
        elif cfg.arch == "transformer":
            d = cfg.hidden
            self.in_proj = nn.ModuleDict({
                **{k.replace(".", "_"): nn.Linear(self.dims[k], d) for k in OBS_KEYS},
                "task": nn.Linear(cfg.task_dim, d), "instruction": nn.Linear(INSTRUCTION_DIM, d),
                "previous_action": nn.Linear(A, d),
                **({"relative": nn.Linear(R, d)} if R else {}),
            })
            n_tokens = len(OBS_KEYS) + 3 + bool(R)
            self.token_pos = nn.Parameter(torch.zeros(n_tokens, d))
            self.queries = nn.Parameter(torch.randn(K, d) * 0.02)
            layer = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, cfg.dropout, batch_first=True, norm_first=True)
            encoder = nn.TransformerEncoder(layer, cfg.layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
            self.transformer = nn.Transformer(
                d_model=d, nhead=cfg.heads, num_encoder_layers=cfg.layers, num_decoder_layers=cfg.layers,
                dim_feedforward=4 * d, dropout=cfg.dropout, batch_first=True, norm_first=True, custom_encoder=encoder,
            )
            self.head = nn.Linear(d, A)
        else:
            raise ValueError(f"unknown policy architecture '{cfg.arch}': choose mlp or transformer")

    def encode_actions(self, joints: torch.Tensor) -> torch.Tensor:
        """Joint targets (B, 28) in the network's action space."""
        return joints if self.hands is None else self.hands(joints)

    def relative(self, env: torch.Tensor, goal: torch.Tensor, previous_action: torch.Tensor) -> torch.Tensor:
        """Raw hand-relative inputs (B, relative_dim): every object's position minus each
        commanded hand's, then the goal's first two entries (a target's x, y in place_part and
        handover) minus each hand's x, y. Grasping is then "drive this offset to a constant"."""
        B = env.shape[0]
        hands = previous_action[:, HAND_POS].reshape(B, 2, 3)
        objects = env.reshape(B, -1, 7)[:, None, :, :3]
        return torch.cat([(objects - hands[:, :, None]).reshape(B, -1),
                          (goal[:, None, :2] - hands[..., :2]).reshape(B, -1)], dim=-1)

    def set_relative_stats(self, env: torch.Tensor, goal: torch.Tensor, previous_action: torch.Tensor) -> None:
        with torch.no_grad():
            rel = self.relative(env, goal, previous_action)
        self.relative_norm.mean.copy_(rel.mean(0))
        self.relative_norm.std.copy_(rel.std(0).clamp_min(1e-2))

    def forward_normalized(self, state, env, goal, task, instruction, previous_action) -> torch.Tensor:
        """Normalised offsets (B, K, A) of the next K actions from ``previous_action``."""
        xs = [self.norm["observation_state"](state, task)[:, self.state_index],
              self.norm["observation_environment_state"](env, task), self.norm["observation_goal"](goal, task)]
        if self.hands is not None:
            xs.append(self.relative_norm(self.relative(env, goal, previous_action)))
        prev = self.action_norm(previous_action, task)
        t = self.task_embedding(task)
        B = state.shape[0]
        if self.cfg.arch == "mlp":
            return self.body(torch.cat([*xs, prev, t, instruction], dim=-1)).view(B, self.cfg.chunk, -1)
        tokens = torch.stack([
            self.in_proj["observation_state"](xs[0]), self.in_proj["observation_environment_state"](xs[1]),
            self.in_proj["observation_goal"](xs[2]), self.in_proj["previous_action"](prev),
            self.in_proj["task"](t), self.in_proj["instruction"](instruction),
            *([self.in_proj["relative"](xs[3])] if self.hands is not None else []),
        ], dim=1) + self.token_pos
        out = self.transformer(tokens, self.queries.expand(B, -1, -1))
        return self.head(out)

    def forward(self, state, env, goal, task, instruction, previous_action) -> torch.Tensor:
        """Raw action chunk (B, K, A)."""
        delta = self.delta_norm.inverse(self.forward_normalized(state, env, goal, task, instruction, previous_action))
        return previous_action[:, None, :] + delta
