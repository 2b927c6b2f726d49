"""Behaviour cloning of action chunks from a dataset (``academy learn``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from academy.data import Dataset
from academy.learn.checkpoint import INSTRUCTIONS_FILE, load_model as load_checkpoint, save_checkpoint
from academy.learn.actions import HandActions
from academy.learn.kinematics import HandFK
from academy.learn.model import ACTION_KEY, INSTRUCTION_DIM, OBS_KEYS, ChunkPolicy, PolicyConfig, placeholder_stats
from academy.sim.tasks import REGISTRY
from academy.sim.world import load_model


@dataclass
class TrainConfig:
    arch: str = "mlp"
    chunk: int = 10
    hidden: int = 512
    layers: int = 3
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_minutes: float = 10.0
    max_steps: int = 30000
    obs_noise: float = 0.05  # std of Gaussian noise on inputs while training, in units of each feature's std
    noise_scale: str = "task"  # that std: within the frame's own task ("task"), or over every frame ("pooled")
    prev_noise: float | None = None  # the same for the previous-action input; None: obs_noise
    val_fraction: float = 0.05
    seed: int = 0
    threads: int = 2
    actions: str = "joints"  # the network's action space: joints or hands (learn/actions.py, docs/learn.md)
    source_weights: dict | None = None  # episode source -> sampling weight (e.g. {"correction": 3}); others 1
    balance_tasks: bool = False  # draw every task's frames equally often, however long its episodes
    input_norm: str = "task"  # the network's input scales: each task's own ("task") or over every frame ("pooled")
    init_from: str | None = None  # a checkpoint to go on training from (same network; its input scales are kept)
    instructions: str | None = None  # a planner folder: condition on each task's skill-text embedding (command stage)


class Frames:
    """The training frames of a dataset in memory, with each frame's episode end; actions (and
    previous actions) in the network's action space, through ``encode`` (joints -> that space)."""

    def __init__(self, ds: Dataset, episodes: list[int], tasks: list[str], encode: Callable | None = None):
        if not episodes:
            raise ValueError(f"no episodes to learn from in {ds.root}")
        data = ds.read(list(OBS_KEYS) + [ACTION_KEY], episodes)
        self.x = {k: torch.from_numpy(data[k].astype(np.float32)) for k in OBS_KEYS}
        self.action = torch.from_numpy(data[ACTION_KEY].astype(np.float32))
        eps = ds.episodes.set_index("episode_index").loc[episodes]
        lengths = eps["length"].to_numpy()
        unknown = sorted(set(eps["academy/task"]) - set(tasks))
        if unknown:
            raise ValueError(f"dataset tasks {unknown} are not in the task registry {tasks}")
        ends = np.cumsum(lengths)
        self.end = torch.from_numpy(np.repeat(ends, lengths) - 1)
        # the previous action: the one commanded a step before; at an episode's first step the
        # measured joint positions (what a robot holds when it starts)
        starts = torch.from_numpy(ends - lengths)
        first = self.x[OBS_KEYS[0]][starts, : self.action.shape[1]]
        if encode is not None:  # each frame converted once; the previous actions are the same rows
            with torch.no_grad():
                self.action, first = encode(self.action), encode(first)
        prev = torch.roll(self.action, 1, dims=0)
        prev[starts] = first
        self.prev = prev
        self.task = torch.from_numpy(np.repeat([tasks.index(t) for t in eps["academy/task"]], lengths))
        self.n = int(lengths.sum())

    def task_stats(self, n_tasks: int) -> dict[str, dict[str, torch.Tensor]]:
        """Each input's mean and std within each task's frames, (n_tasks, dim), the std floored;
        a task without frames gets the pooled mean and the floor.

        Training noise is drawn in these units: over all tasks, an object slot's std mixes where
        different tasks put different objects (about 0.4 m here), and 5% of it was 2 cm of noise
        on a part that must be placed within millimetres."""
        out = {}
        for k, v in [*self.x.items(), ("prev", self.prev)]:
            mean, std = v.mean(0).repeat(n_tasks, 1), torch.full((n_tasks, v.shape[1]), INPUT_STD_FLOOR)
            for t in range(n_tasks):
                mine = v[self.task == t]
                if len(mine) > 1:
                    mean[t], std[t] = mine.mean(0), mine.std(0).clamp_min(INPUT_STD_FLOOR)
            out[k] = {"mean": mean, "std": std}
        return out

    def batch(self, idx: torch.Tensor, chunk: int):
        steps = torch.minimum(idx[:, None] + torch.arange(chunk)[None], self.end[idx][:, None])
        return {k: v[idx] for k, v in self.x.items()}, self.task[idx], self.prev[idx], self.action[steps]

    def delta_stats(self, chunk: int) -> dict[str, torch.Tensor]:
        """Mean and std (chunk, A) of the next actions' offsets from the previous action."""
        idx = torch.arange(self.n)
        *_, prev, target = self.batch(idx, chunk)
        delta = target - prev[:, None]
        return {"mean": delta.mean(0), "std": delta.std(0).clamp_min(1e-4)}


# A floor on the input scales (rad, m): joints the demonstrations barely move (neck, waist: std 0.2-1.2
# mrad) would otherwise turn a robot's 2.5 mrad of sensor noise or 8 mrad of calibration offset into
# inputs 2-8 standard deviations out, and the policy failed on them (benchmarks/reality_gap.py).
INPUT_STD_FLOOR = 0.01


def _stats_tensors(ds: Dataset, frames: "Frames", cfg: PolicyConfig, per_task: dict | None) -> dict:
    """The network's scales; ``per_task``: ``frames.task_stats``, needed with per-task input scales."""
    stats = placeholder_stats(cfg)
    if cfg.input_norm == "task":  # each task's own input scales (the previous action's in the network's space)
        stats.update({k: per_task[k] for k in OBS_KEYS})
        stats[ACTION_KEY] = per_task["prev"]
    else:
        stats.update({k: {"mean": torch.as_tensor(np.asarray(ds.stats[k]["mean"]), dtype=torch.float32),
                          "std": torch.as_tensor(np.asarray(ds.stats[k]["std"]), dtype=torch.float32).clamp_min(INPUT_STD_FLOOR)}
                      for k in OBS_KEYS})
        stats[ACTION_KEY] = {"mean": frames.action.mean(0),  # in the network's space
                             "std": frames.action.std(0).clamp_min(INPUT_STD_FLOOR)}
    stats["delta"] = frames.delta_stats(cfg.chunk)
    return stats


def _frame_weights(ds: Dataset, episodes: list[int], source_weights: dict | None,
                   balance_tasks: bool = False) -> torch.Tensor | None:
    """Per-frame sampling weights from each episode's source and, with ``balance_tasks``, its task's
    share of the frames (each task then drawn equally often), or None when every frame weighs the
    same (then frames are drawn uniformly, exactly as without weights)."""
    if not source_weights and not balance_tasks:
        return None
    eps = ds.episodes.set_index("episode_index").loc[episodes]
    per_episode = np.array([float((source_weights or {}).get(s, 1.0)) for s in eps["academy/source"]])
    if np.any(per_episode <= 0):
        raise ValueError(f"source weights must be above 0, got {source_weights}")
    lengths = eps["length"].to_numpy()
    if balance_tasks:  # each task's weighted frames sum to the same total
        task = eps["academy/task"].to_numpy()
        for t in np.unique(task):
            mine = task == t
            per_episode[mine] /= float(np.sum(per_episode[mine] * lengths[mine]))
    if np.allclose(per_episode, per_episode[0]):
        return None
    return torch.from_numpy(np.repeat(per_episode, lengths))


def train(dataset: str | Path, out: str | Path, cfg: TrainConfig = TrainConfig(), outcome: str | None = "success",
          tasks: list[str] | None = None, on_step: Callable[[int, float, float], None] | None = None) -> dict:
    """Train one policy on every task of ``dataset``; write a checkpoint folder at ``out``."""
    if cfg.noise_scale not in ("task", "pooled"):  # before any data is read
        raise ValueError(f"noise_scale must be 'task' or 'pooled', got {cfg.noise_scale!r}")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    ds = Dataset(dataset)
    all_tasks = list(REGISTRY)
    per_task = {t: ds.select(task=t, outcome=outcome) for t in (tasks or all_tasks)}
    chosen = [i for eps in per_task.values() for i in eps]
    rng = np.random.default_rng(cfg.seed)
    chosen = sorted(chosen)
    n_val = max(1, int(len(chosen) * cfg.val_fraction)) if len(chosen) > 1 and cfg.val_fraction > 0 else 0
    val_eps = sorted(rng.choice(chosen, n_val, replace=False).tolist()) if n_val else []
    train_eps = [e for e in chosen if e not in set(val_eps)]
    pcfg = PolicyConfig(
        obs_dims={k: int(ds.features[k]["shape"][0]) for k in OBS_KEYS},
        action_dim=int(ds.features[ACTION_KEY]["shape"][0]), tasks=all_tasks, arch=cfg.arch, chunk=cfg.chunk,
        hidden=cfg.hidden, layers=cfg.layers, fps=ds.fps, actions=cfg.actions, input_norm=cfg.input_norm,
        kinematics=HandFK.specs(load_model()) if cfg.actions == "hands" else None,
    )
    encode = HandActions(pcfg.kinematics) if cfg.actions == "hands" else None
    frames = Frames(ds, train_eps, all_tasks, encode)
    weights = _frame_weights(ds, train_eps, cfg.source_weights, cfg.balance_tasks)
    val = Frames(ds, val_eps, all_tasks, encode) if val_eps else None
    # each task's input scales, read once: the network's (input_norm) and the training noise's (noise_scale)
    task_scales = frames.task_stats(len(all_tasks)) if "task" in (cfg.input_norm, cfg.noise_scale) else None
    if cfg.init_from:  # warm start: the earlier weights with the input and action scales they were made with
        model = load_checkpoint(cfg.init_from)
        if model.cfg != pcfg:
            differ = sorted(k for k in pcfg.__dict__ if getattr(model.cfg, k) != getattr(pcfg, k))
            raise ValueError(f"cannot go on training {cfg.init_from}: its network differs in {differ}")
    else:
        model = ChunkPolicy(pcfg, _stats_tensors(ds, frames, pcfg, task_scales))
        if model.hands is not None:
            model.set_relative_stats(frames.x[OBS_KEYS[1]], frames.x[OBS_KEYS[2]], frames.prev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    table = torch.zeros(len(all_tasks), INSTRUCTION_DIM)  # each task's instruction; zeros: none
    instructions = None
    if cfg.instructions:
        instructions = instruction_table(cfg.instructions, all_tasks)
        table = torch.tensor([instructions["vectors"].get(t, [0.0] * INSTRUCTION_DIM) for t in all_tasks])
    t0, step, history = time.time(), 0, []

    task_std = {k: v["std"] for k, v in task_scales.items()} if cfg.noise_scale == "task" else None

    def noise_std(key: str, task: torch.Tensor) -> torch.Tensor:
        if task_std is not None:
            return task_std[key][task]
        norm = model.action_norm if key == "prev" else model.norm[key.replace(".", "_")]
        return norm.scale(task)  # the network's input scales, per task or pooled

    def loss_on(data: Frames, idx: torch.Tensor, noise: float) -> torch.Tensor:
        x, task, prev, target = data.batch(idx, cfg.chunk)
        if noise:  # noise in units of each feature's std; on the previous action too, and the
            # target stays the expert's absolute action: the network learns to steer back (DART-like)
            x = {k: v + noise * torch.randn_like(v) * noise_std(k, task) for k, v in x.items()}
            prev_noise = noise if cfg.prev_noise is None else cfg.prev_noise
            prev = prev + prev_noise * torch.randn_like(prev) * noise_std("prev", task)
        pred = model.forward_normalized(x[OBS_KEYS[0]], x[OBS_KEYS[1]], x[OBS_KEYS[2]], task, table[task], prev)
        return torch.nn.functional.l1_loss(pred, model.delta_norm(target - prev[:, None]))

    model.train()
    while True:
        done = max(step / cfg.max_steps, (time.time() - t0) / (60 * cfg.max_minutes))
        if done >= 1:
            break
        for group in opt.param_groups:  # warm-up then cosine decay over whichever budget ends first
            group["lr"] = cfg.lr * min(1.0, done / 0.03) * 0.5 * (1 + np.cos(np.pi * done))
        idx = (torch.randint(0, frames.n, (cfg.batch_size,)) if weights is None
               else torch.multinomial(weights, cfg.batch_size, replacement=True))
        loss = loss_on(frames, idx, cfg.obs_noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0 or step == 1:
            history.append((step, loss.item()))
            if on_step:
                on_step(step, loss.item(), done)
    if history[-1][0] != step:
        history.append((step, loss.item()))
    model.eval()
    val_loss = None
    if val is not None:
        with torch.no_grad():
            idx = torch.arange(val.n)
            val_loss = float(np.mean([float(loss_on(val, b, 0.0)) for b in idx.split(cfg.batch_size)]))
    info = {
        "dataset": str(Path(dataset).resolve()), "episodes": len(train_eps), "val_episodes": len(val_eps),
        "trained_tasks": [t for t, eps in per_task.items() if eps],
        "frames": frames.n, "steps": step, "seconds": round(time.time() - t0, 1),
        "first_loss": history[0][1], "final_loss": history[-1][1], "val_loss": val_loss,
        "loss_curve": history, "train": cfg.__dict__,
    }
    save_checkpoint(out, model, info)
    if instructions:
        (Path(out) / INSTRUCTIONS_FILE).write_text(json.dumps(instructions))
    return info


def instruction_table(planner_dir: str, tasks: list[str]) -> dict:
    """Each task's conditioning vector from a planner: the embedding of its skill's normal form."""
    from academy.command.planner import read_spec, skill_vector

    spec = read_spec(planner_dir)
    skills = [t for t in tasks if t in spec.get("skill_vectors", {})]
    return {"planner": f"{spec['kind']}-{spec['version']}", "planner_dir": str(Path(planner_dir).resolve()),
            "texts": {t: spec["skill_texts"][t] for t in skills},
            "vectors": {t: skill_vector(spec, t).tolist() for t in skills}}

