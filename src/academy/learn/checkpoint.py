"""Policy checkpoints: a folder that loads without Academy's training code.

    config.json    the network's configuration (PolicyConfig)
    stats.json     the normalisation it was trained with (also inside the weights)
    weights.pt     the state dict (Academy's ``Policy.load`` reads this)
    model.pt2      torch.export program: raw inputs -> raw action chunk; torch alone loads it
    model.onnx     the same graph for ONNX runtimes
    train.json     how it was trained: data, steps, time, loss curve

Inputs of model.pt2 / model.onnx, batch B: state (B, 56), env (B, 77), goal (B, 40) float32,
task (B,) int64 (index into config["tasks"]), instruction (B, 64) float32, previous_action
(B, A) float32 (the action last commanded; at an episode's first step the measured joint
positions, in the action space); output (B, chunk, A). With config["actions"] "joints", A = 28
joint targets; with "hands", A = 32 (learn/actions.py: the layout, and the IK that turns it
into joint targets).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from academy.learn.model import INSTRUCTION_DIM, OBS_KEYS, ChunkPolicy, PolicyConfig, net_action_dim, placeholder_stats

INSTRUCTIONS_FILE = "instructions.json"  # each task's instruction vector, when trained with them
INPUT_NAMES = ["state", "env", "goal", "task", "instruction", "previous_action"]


def example_inputs(cfg: PolicyConfig, batch: int = 2) -> tuple[torch.Tensor, ...]:
    return (*(torch.zeros(batch, cfg.obs_dims[k]) for k in OBS_KEYS), torch.zeros(batch, dtype=torch.long),
            torch.zeros(batch, INSTRUCTION_DIM), torch.zeros(batch, net_action_dim(cfg)))


def save_checkpoint(out: str | Path, model: ChunkPolicy, train_info: dict) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    cfg = model.cfg
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    stats = {k: {"mean": n.mean.tolist(), "std": n.std.tolist()} for k, n in model.norm.items()}
    stats["action"] = {"mean": model.action_norm.mean.tolist(), "std": model.action_norm.std.tolist()}
    stats["delta"] = {"mean": model.delta_norm.mean.tolist(), "std": model.delta_norm.std.tolist()}
    if model.hands is not None:
        stats["relative"] = {"mean": model.relative_norm.mean.tolist(), "std": model.relative_norm.std.tolist()}
    (out / "stats.json").write_text(json.dumps(stats))
    torch.save(model.state_dict(), out / "weights.pt")
    inputs = example_inputs(cfg)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = tuple({0: batch} for _ in inputs)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused transformer kernel has no ONNX form
    with torch.no_grad():
        program = torch.export.export(model, inputs, dynamic_shapes=shapes)
        torch.export.save(program, out / "model.pt2")
        torch.onnx.export(
            model, inputs, str(out / "model.onnx"), dynamo=False, input_names=INPUT_NAMES,
            output_names=["actions"], dynamic_axes={n: {0: "batch"} for n in [*INPUT_NAMES, "actions"]},
        )
    torch.backends.mha.set_fastpath_enabled(fastpath)
    (out / "train.json").write_text(json.dumps(train_info, indent=2))
    return out


def load_config(path: str | Path) -> PolicyConfig:
    """A checkpoint's config (its tasks, sizes, action space) without loading the weights."""
    path = Path(path)
    for name in ("config.json", "weights.pt"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path} is not a policy checkpoint: {name} missing")
    return PolicyConfig(**json.loads((path / "config.json").read_text()))


def trained_tasks(path: str | Path) -> list[str]:
    """The tasks a checkpoint was trained on (its train.json), or every task its config knows."""
    cfg = load_config(path)
    info = Path(path) / "train.json"
    if info.exists():
        listed = json.loads(info.read_text()).get("trained_tasks")
        if listed is not None:
            return list(listed)
    return list(cfg.tasks)


def load_model(path: str | Path) -> ChunkPolicy:
    path = Path(path)
    cfg = load_config(path)
    state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    model = ChunkPolicy(cfg, placeholder_stats(cfg))
    for derived in ("state_index", "hands.pass_index"):  # constants of the config, stored by early checkpoints
        state.pop(derived, None)
    model.load_state_dict(state)
    model.eval()
    return model
