"""Fit the world model on stored episodes, and measure how far its open-loop rollouts drift.

Every episode of the given datasets is used, whatever its source (expert, human-video,
practice, fleet); a share of episodes, chosen by a fixed seed, is held out for the k-step
error. The context of a stored episode is nominal (1.0) today: the store does not yet record
the physics an episode ran under.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from academy.data import Dataset
from academy.dream.model import (ACTION, CONTEXT, DIMS, ENV, GOAL, NOMINAL_CONTEXT, STATE, X_DIM, WorldModel,
                                 WorldModelConfig)

K_STEPS = (1, 10, 50)
N_JOINTS = DIMS[STATE] // 2


@dataclass
class FitConfig:
    max_minutes: float = 5.0
    max_steps: int = 20000
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-5
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 2


@dataclass
class Episodes:
    """Episodes as arrays: x (T, 133), goal, action, reward, end, success flag per episode."""

    x: list[np.ndarray]
    goal: list[np.ndarray]
    action: list[np.ndarray]
    reward: list[np.ndarray]
    success: list[bool]
    names: list[str]

    @classmethod
    def load(cls, paths: list[str | Path]) -> "Episodes":
        out = cls([], [], [], [], [], [])
        for path in paths:
            ds = Dataset(path)
            missing = [k for k in (STATE, ENV, GOAL, ACTION, "next.reward") if k not in ds.features]
            if missing:
                raise ValueError(f"{path} lacks {missing}: a world model needs state, object poses, goal, action, reward")
            table = ds.episode_table()
            data = ds.read([STATE, ENV, GOAL, ACTION, "next.reward", "episode_index"])
            idx = data["episode_index"].reshape(-1)
            for ep, outcome in zip(table["episode_index"], table["academy/outcome"]):
                rows = idx == ep
                if rows.sum() < 2:
                    continue
                out.x.append(np.concatenate([data[STATE][rows], data[ENV][rows]], 1).astype(np.float32))
                out.goal.append(data[GOAL][rows].astype(np.float32))
                out.action.append(data[ACTION][rows].astype(np.float32))
                out.reward.append(data["next.reward"][rows].reshape(-1).astype(np.float32))
                out.success.append(outcome == "success")
                out.names.append(f"{Path(path).name}#{ep}")
        if not out.x:
            raise ValueError(f"no episodes of two or more frames in {[str(p) for p in paths]}")
        return out

    def split(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        n = len(self.x)
        order = np.random.default_rng(seed).permutation(n)
        n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())

    def transitions(self, episodes: list[int]) -> dict[str, torch.Tensor]:
        """(x_t, goal_t, a_t) -> x_{t+1}, reward_t, end_t, success_t for every step but the last of
        each episode, whose next state is not stored; its end and success labels go on the step
        before it."""
        cols = {k: [] for k in ("x", "goal", "action", "next", "reward", "end", "success")}
        for i in episodes:
            x, T = self.x[i], len(self.x[i])
            end = np.zeros(T - 1, np.float32)
            end[-1] = 1.0
            cols["x"].append(x[:-1])
            cols["next"].append(x[1:])
            cols["goal"].append(self.goal[i][:-1])
            cols["action"].append(self.action[i][:-1])
            cols["reward"].append(self.reward[i][:-1])
            cols["end"].append(end)
            cols["success"].append(end * float(self.success[i]))
        return {k: torch.from_numpy(np.concatenate(v)) for k, v in cols.items()}


def fit(datasets: list[str | Path], out: str | Path, cfg: FitConfig | None = None,
        model_cfg: WorldModelConfig | None = None,
        on_step: Callable[[int, float, float], None] | None = None) -> dict:
    """Train the ensemble; returns (and saves in ``out/fit.json``) what was done and the k-step table."""
    cfg, model_cfg = cfg or FitConfig(), model_cfg or WorldModelConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    eps = Episodes.load(datasets)
    train_ids, val_ids = eps.split(cfg.val_fraction, cfg.seed)
    tr = eps.transitions(train_ids)
    model = WorldModel(model_cfg)
    model.x_norm.fit(tr["x"])
    model.goal_norm.fit(tr["goal"])
    model.action_norm.fit(tr["action"])
    model.delta_norm.fit(tr["next"] - tr["x"])
    model.reward_scale.fill_(float(tr["reward"].abs().max().clamp_min(1e-6)))
    context = torch.tensor(NOMINAL_CONTEXT).expand(len(tr["x"]), len(CONTEXT))
    target = model.delta_norm(tr["next"] - tr["x"])
    reward = tr["reward"] / model.reward_scale
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n, M = len(tr["x"]), model_cfg.members
    gen = torch.Generator().manual_seed(cfg.seed)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    t0, step, losses, first = time.time(), 0, [], None
    model.train()
    while step < cfg.max_steps and time.time() - t0 < 60 * cfg.max_minutes:
        idx = torch.randint(0, n, (M, cfg.batch_size), generator=gen)  # each member its own bootstrap batch
        loss = 0.0
        for m, member in enumerate(model.members):
            b = idx[m]
            o = member(model.inputs(tr["x"][b], tr["goal"][b], tr["action"][b], context[b]))
            loss = loss + ((o[:, :X_DIM] - target[b]) ** 2).mean() + ((o[:, X_DIM] - reward[b]) ** 2).mean() \
                + 0.1 * bce(o[:, X_DIM + 1], tr["end"][b]) + 0.1 * bce(o[:, X_DIM + 2], tr["success"][b])
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
            "transitions": n, "steps": step, "seconds": round(seconds, 1), "first_loss": first,
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
    back), from start points every ``stride`` steps of each held-out episode, against the physics
    that recorded it. Median over start points, per component; and the error of predicting no
    change at all (the baseline a model must beat)."""
    table = {}
    for k in ks:
        rows, still = {}, {}
        for i in episodes:
            x, T = eps.x[i], len(eps.x[i])
            starts = np.arange(0, T - k, stride)
            if not len(starts):
                continue
            moved = np.linalg.norm(x[-1, DIMS[STATE]:].reshape(-1, 7)[:, :3] - x[0, DIMS[STATE]:].reshape(-1, 7)[:, :3],
                                   axis=1) > 0.01
            if not moved.any():
                moved[:] = True
            cur = torch.from_numpy(x[starts])
            ctx = torch.tensor(NOMINAL_CONTEXT).expand(len(starts), len(CONTEXT))
            for j in range(k):
                t = starts + j
                cur = model.step(cur, torch.from_numpy(eps.goal[i][t]), torch.from_numpy(eps.action[i][t]), ctx)["x"]
            for name, v in _components(cur.numpy(), x[starts + k], moved).items():
                rows.setdefault(name, []).append(v)
            for name, v in _components(x[starts], x[starts + k], moved).items():
                still.setdefault(name, []).append(v)
        if rows:
            table[str(k)] = {name: round(float(np.median(np.concatenate(v))), 4) for name, v in rows.items()}
            table[str(k)]["no_change_baseline"] = {name: round(float(np.median(np.concatenate(v))), 4)
                                                   for name, v in still.items()}
    return table


def plot_kstep(table: dict, path: str | Path) -> Path:
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
