"""Fit the world model on stored episodes, and measure how far its open-loop rollouts drift.

Every episode of the given datasets is used, whatever its source (expert, human-video,
practice, dream, fleet); a share of episodes, chosen by a fixed seed, is held out for the
k-step error. An episode's physical context is read from ``observation.context`` where the
dataset records it (``academy collect --context``), and is nominal (1.0) where it does not.

The loss is taken over ``horizon`` steps: from a stored state each member rolls its own
predictions forward under the recorded actions, and each step is scored against the recorded
next state (gradients flow through the rollout). One step teaches the next state; several
teach the model not to drift on its own predictions, which is how it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from academy.data import Dataset
from academy.dream.model import (ACTION, CONTEXT, CONTEXT_KEY, DIMS, ENV, EXECUTED, GOAL, N_JOINTS, N_OBJECTS,
                                 NOMINAL_CONTEXT, STATE, X_DIM, WorldModel, WorldModelConfig)

K_STEPS = (1, 10, 50)
MOVE_MM = 0.2  # an object that moves more than this in one step (50 ms) is "moving"
MOVE_RAD = 0.004


@dataclass
class FitConfig:
    max_minutes: float = 5.0
    max_steps: int = 20000
    batch_size: int = 512
    horizon: int = 4  # steps of each training rollout (1: one-step loss)
    lr: float = 1e-3
    weight_decay: float = 1e-5
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 2


@dataclass
class Episodes:
    """Episodes as arrays: x (T, 133), goal, action, reward, context (T, 3); per episode its success
    flag, name (DATASET#EPISODE), task and scene seed."""

    x: list[np.ndarray]
    goal: list[np.ndarray]
    action: list[np.ndarray]
    reward: list[np.ndarray]
    context: list[np.ndarray]
    success: list[bool]
    names: list[str]
    tasks: list[str]
    seeds: list[int]

    @classmethod
    def load(cls, paths: list[str | Path]) -> "Episodes":
        out = cls([], [], [], [], [], [], [], [], [])
        for path in paths:
            ds = Dataset(path)
            missing = [k for k in (STATE, ENV, GOAL, ACTION, "next.reward") if k not in ds.features]
            if missing:
                raise ValueError(f"{path} lacks {missing}: a world model needs state, object poses, goal, action, reward")
            # the executed command where the dataset records it (with DART noise the label differs from it)
            act = EXECUTED if EXECUTED in ds.features else ACTION
            keys = [STATE, ENV, GOAL, act, "next.reward", "episode_index"]
            has_context = CONTEXT_KEY in ds.features
            if has_context:
                names = ds.features[CONTEXT_KEY].get("names")
                if list(names or []) != list(CONTEXT):
                    raise ValueError(f"{path}: {CONTEXT_KEY} holds {names}, this world model reads {list(CONTEXT)}")
                keys.append(CONTEXT_KEY)
            table = ds.episode_table()
            data = ds.read(keys)
            idx = data["episode_index"].reshape(-1)
            order = np.argsort(idx, kind="stable")
            bounds = dict(zip(*np.unique(idx[order], return_index=True)))
            counts = dict(zip(*np.unique(idx, return_counts=True)))
            for ep, outcome, task, seed in zip(table["episode_index"], table["academy/outcome"], table["academy/task"],
                                               table["academy/seed"]):
                if counts.get(ep, 0) < 2:
                    continue
                rows = order[bounds[ep] : bounds[ep] + counts[ep]]
                out.x.append(np.concatenate([data[STATE][rows], data[ENV][rows]], 1).astype(np.float32))
                out.goal.append(data[GOAL][rows].astype(np.float32))
                out.action.append(data[act][rows].astype(np.float32))
                out.reward.append(data["next.reward"][rows].reshape(-1).astype(np.float32))
                ctx = data[CONTEXT_KEY][rows] if has_context else np.tile(NOMINAL_CONTEXT, (len(rows), 1))
                out.context.append(np.asarray(ctx, np.float32))
                out.success.append(outcome == "success")
                out.names.append(f"{Path(path).name}#{ep}")
                out.tasks.append(str(task))
                out.seeds.append(int(seed))
        if not out.x:
            raise ValueError(f"no episodes of two or more frames in {[str(p) for p in paths]}")
        return out

    def split(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        n = len(self.x)
        order = np.random.default_rng(seed).permutation(n)
        n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())

    def frames(self, episodes: list[int]) -> dict[str, torch.Tensor]:
        """The episodes' frames end to end, with per-frame labels of the step that starts there:
        ``valid`` (a next frame exists in the same episode), ``end`` and ``success`` (the episode
        ends after this step; the last frame has no stored next state, so its labels go on the
        frame before it)."""
        cols = {k: [] for k in ("x", "goal", "action", "context", "reward", "valid", "end", "success")}
        for i in episodes:
            T = len(self.x[i])
            valid, end = np.ones(T, bool), np.zeros(T, np.float32)
            valid[-1], end[-2] = False, 1.0
            for k, v in (("x", self.x[i]), ("goal", self.goal[i]), ("action", self.action[i]),
                         ("context", self.context[i]), ("reward", self.reward[i]), ("valid", valid), ("end", end),
                         ("success", end * float(self.success[i]))):
                cols[k].append(v)
        return {k: torch.from_numpy(np.concatenate(v)) for k, v in cols.items()}


def moving(x: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
    """(B, N_OBJECTS) 1.0 where an object moves between two frames."""
    a, b = x[:, DIMS[STATE]:].reshape(len(x), N_OBJECTS, 7), nxt[:, DIMS[STATE]:].reshape(len(x), N_OBJECTS, 7)
    dpos = (b[..., :3] - a[..., :3]).norm(dim=-1)
    dang = 2 * torch.arccos((a[..., 3:] * b[..., 3:]).sum(-1).abs().clamp(max=1.0))
    return ((dpos > MOVE_MM * 1e-3) | (dang > MOVE_RAD)).float()


def fit(datasets: list[str | Path], out: str | Path, cfg: FitConfig | None = None,
        model_cfg: WorldModelConfig | None = None,
        on_step: Callable[[int, float, float], None] | None = None) -> dict:
    """Train the ensemble; returns (and saves in ``out/fit.json``) what was done and the k-step table."""
    cfg, model_cfg = cfg or FitConfig(), model_cfg or WorldModelConfig()
    if cfg.horizon < 1:
        raise ValueError(f"horizon must be at least 1 step, got {cfg.horizon}")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    eps = Episodes.load(datasets)
    train_ids, val_ids = eps.split(cfg.val_fraction, cfg.seed)
    fr = eps.frames(train_ids)
    H = cfg.horizon
    # a start s needs frames s..s+H in its episode: every step s..s+H-1 valid
    ok = fr["valid"].clone()
    for h in range(1, H):
        ok[:-h] &= fr["valid"][h:]
        ok[-h:] = False
    starts = torch.nonzero(ok).reshape(-1)
    if not len(starts):
        raise ValueError(f"no episode is longer than the training horizon ({H} steps)")
    one = torch.nonzero(fr["valid"]).reshape(-1)
    model = WorldModel(model_cfg)
    model.x_norm.fit(fr["x"][one])
    model.goal_norm.fit(fr["goal"][one])
    model.action_norm.fit(fr["action"][one])
    model.delta_norm.fit(fr["x"][one + 1] - fr["x"][one])
    if model_cfg.hand_features:
        with torch.no_grad():
            model.hand_norm.fit(model.hand_features(fr["x"][one], fr["action"][one]))
    model.reward_scale.fill_(float(fr["reward"].abs().max().clamp_min(1e-6)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    M = model_cfg.members
    gen = torch.Generator().manual_seed(cfg.seed)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    t0, step, losses, first, value = time.time(), 0, [], None, float("nan")
    model.train()
    while step < cfg.max_steps and time.time() - t0 < 60 * cfg.max_minutes:
        idx = starts[torch.randint(0, len(starts), (M, cfg.batch_size), generator=gen)]  # own bootstrap batches
        loss = 0.0
        for m, member in enumerate(model.members):
            b = idx[m]
            x = fr["x"][b]
            for h in range(H):
                t = b + h
                o = member(model.inputs(x, fr["goal"][t], fr["action"][t], fr["context"][t]))
                nxt = fr["x"][t + 1]
                loss = loss + (((o[:, :X_DIM] - model.delta_norm(nxt - x)) ** 2).mean()
                               + ((o[:, X_DIM] - fr["reward"][t] / model.reward_scale) ** 2).mean()
                               + 0.1 * bce(o[:, X_DIM + 1], fr["end"][t])
                               + 0.1 * bce(o[:, X_DIM + 2], fr["success"][t])) / H
                if model_cfg.gate_objects:
                    loss = loss + 0.1 * bce(o[:, X_DIM + 3:], moving(x, nxt)) / H
                if h + 1 < H:
                    x = x + model.delta_norm.inverse(model.delta(o))
        opt.zero_grad()
        (loss / M).backward()
        opt.step()
        step += 1
        value = float(loss.detach()) / M
        first = value if first is None else first
        if step % 100 == 0:
            losses.append([step, round(value, 5)])
            if on_step:
                on_step(step, value, min(1.0, max(step / cfg.max_steps, (time.time() - t0) / (60 * cfg.max_minutes))))
    model.eval()
    seconds = time.time() - t0
    info = {"datasets": [str(d) for d in datasets], "episodes": len(train_ids), "val_episodes": len(val_ids),
            "transitions": int(fr["valid"].sum()), "steps": step, "seconds": round(seconds, 1), "first_loss": first,
            "final_loss": losses[-1][1] if losses else value, "loss_curve": losses, "fit": cfg.__dict__,
            "model": model_cfg.to_dict(), "kstep": kstep_error(model, eps, val_ids) if val_ids else {}}
    model.save(out, info)
    return info


def _components(pred: np.ndarray, true: np.ndarray, moved: np.ndarray) -> dict[str, np.ndarray]:
    """Per start point: joint position error (rad), joint velocity error (rad/s), object position
    error (mm) and orientation error (degrees) over the objects the episode moves."""
    s = DIMS[STATE]
    pe = np.abs(pred[:, :N_JOINTS] - true[:, :N_JOINTS]).mean(1)
    ve = np.abs(pred[:, N_JOINTS:s] - true[:, N_JOINTS:s]).mean(1)
    po, to = pred[:, s:].reshape(len(pred), -1, 7), true[:, s:].reshape(len(true), -1, 7)
    pos = np.linalg.norm(po[..., :3] - to[..., :3], axis=-1)[:, moved] * 1e3
    dot = np.abs((po[..., 3:] * to[..., 3:]).sum(-1)).clip(0, 1)
    ang = np.degrees(2 * np.arccos(dot))[:, moved]
    return {"joint_pos_rad": pe, "joint_vel_rad_s": ve, "object_pos_mm": pos.mean(1), "object_rot_deg": ang.mean(1)}


@torch.no_grad()
def kstep_error(model: WorldModel, eps: Episodes, episodes: list[int], ks=K_STEPS, stride: int = 5) -> dict:
    """Open-loop error after k steps (the recorded actions fed to the model, its own predictions fed
    back), against the physics that recorded it. One rollout of max(ks) steps from start points
    every ``stride`` steps of each held-out episode (those with max(ks) steps after them), read at
    each k. Median over start points, per component; and the error of predicting no change at all
    (the baseline a model must beat)."""
    K = max(ks)
    rows = {k: {} for k in ks}
    still = {k: {} for k in ks}
    for i in episodes:
        x, T = eps.x[i], len(eps.x[i])
        starts = np.arange(0, T - K, stride)
        if not len(starts):
            continue
        moved = np.linalg.norm(x[-1, DIMS[STATE]:].reshape(-1, 7)[:, :3] - x[0, DIMS[STATE]:].reshape(-1, 7)[:, :3],
                               axis=1) > 0.01
        if not moved.any():
            moved[:] = True
        cur = torch.from_numpy(x[starts])
        for j in range(1, K + 1):
            t = starts + j - 1
            cur = model.step(cur, torch.from_numpy(eps.goal[i][t]), torch.from_numpy(eps.action[i][t]),
                             torch.from_numpy(eps.context[i][t]))["x"]
            if j in rows:
                for name, v in _components(cur.numpy(), x[starts + j], moved).items():
                    rows[j].setdefault(name, []).append(v)
                for name, v in _components(x[starts], x[starts + j], moved).items():
                    still[j].setdefault(name, []).append(v)
    table = {}
    for k in ks:
        if rows[k]:
            table[str(k)] = {name: round(float(np.median(np.concatenate(v))), 4) for name, v in rows[k].items()}
            table[str(k)]["no_change_baseline"] = {name: round(float(np.median(np.concatenate(v))), 4)
                                                   for name, v in still[k].items()}
    return table


def kstep_figure(table: dict):
    """Error against k per state component, the no-change baseline dashed (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(int(k) for k in table)
    names = [n for n in table[str(ks[0])] if n != "no_change_baseline"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3))
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.plot(ks, [table[str(k)][name] for k in ks], "o-", label="world model")
        ax.plot(ks, [table[str(k)]["no_change_baseline"][name] for k in ks], "s--", color="grey", label="no change")
        ax.set_xscale("log")
        ax.set_xlabel("k (steps, open loop)")
        ax.set_title(name)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_kstep(table: dict, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig = kstep_figure(table)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
