"""One demonstration, many dreamed variations: perturb its starting scene, roll the policy forward
in the world model, keep what the model judges a success it is sure of, write it to the store.

A variation changes the source episode's first frame: every object on the bench moves by up to
``position_jitter`` in x and y and turns by up to ``yaw_jitter`` about the vertical, and the
physical context (friction, object mass and size scale factors) is drawn from
``context_ranges``. The policy then acts on the model's predicted states, its arm-joint targets
perturbed by exploration noise held for ``hold_steps`` steps. As in a DART demonstration, the
executed commands (noise included) are stored as ``action.executed``, what the model steps on, and
the policy's own as ``action``, the label. A row ends in success when the task's own success rule holds
in the predicted state (``judge="task"``, asked where the model's predicted reward reaches
``judge_from``; ``dream/judge.py``), or, with ``judge="head"``, when the model's success
probability passes ``success_threshold``; else at the task's time limit. A row called a success
goes on for ``settle_steps`` more steps, the policy still acting, so that the physics check
replays the release to its end: the rule first holds the moment the hand lets go in the model,
and a replay a few steps behind it still had the fingers on the part. With ``settle_recheck``
the verdict must also hold after the settling; off by default, because the model has never seen a
state after a success (recorded episodes end there) and lets the part sink through the socket in
most of them. The stored episode ends at the step the dream was called a success.

A variation is kept when the model calls it a success and its mean ensemble spread over the
rollout is at most ``max_uncertainty`` times the spread the model shows on the source
episode's own (real) steps: the model is trusted about as far as it is on data it has seen.

The true test of a dream (``check_in_physics``): the kept variations' actions replayed open
loop in the MuJoCo workcell from the same perturbed scene and context. The same replay of
rejected variations gives the base rate the filter must beat.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from academy.data import Dataset, EpisodeMeta
from academy.dream.judge import TaskJudge, check_judge
from academy.dream.model import (ACTION, CONTEXT, CONTEXT_KEY, DIMS, ENV, EXECUTED, GOAL, N_OBJECTS, STATE, X_DIM,
                                 WorldModel)

# Workers are spawned, not forked: a fork of this process (torch's and pyarrow's threads running) can
# leave a child waiting forever on a lock a parent thread held; it did, in the 10,000-variation run.
SPAWN = multiprocessing.get_context("spawn")
BENCH_Z = 0.85  # objects with their centre above this are on the bench (parked ones lie on the floor)


@dataclass
class VariationConfig:
    variations: int = 10000
    position_jitter: float = 0.02  # m, each bench object's x and y, uniform +-
    yaw_jitter: float = 0.2  # rad, each bench object's turn about the vertical, uniform +-
    context_ranges: dict = field(default_factory=lambda: {"friction": (0.6, 1.4), "object_mass": (0.7, 1.6),
                                                          "object_size": (0.92, 1.08)})
    noise: float = 0.005  # rad, exploration noise on the executed arm-joint targets
    hold_steps: int = 10  # the noise is held this many steps (white noise per step teaches little)
    judge: str = "task"  # "task": the task's own success rule on the predicted state; "head": the model's head
    judge_from: float = 0.8  # the rule is asked where the model's predicted reward reaches this (a success: 1.0)
    success_threshold: float = 0.5  # with judge="head": the success probability that ends a dream
    min_steps: int = 10  # a dream is not judged a success before this many steps
    settle_steps: int = 10  # a dream goes on this many steps after it is called a success (the release played out)
    settle_recheck: bool = False  # and must still be called one then
    max_uncertainty: float = 2.0  # x the model's median spread on the source episode's real steps
    batch: int = 2500  # rows rolled forward together
    seed: int = 0
    threads: int = 2


@dataclass
class Source:
    """The demonstration a dream starts from: its first frame, task, scene seed and context."""

    dataset: str
    episode: int
    task: str
    seed: int
    x: np.ndarray  # (T, X_DIM) the recorded states
    goal: np.ndarray
    action: np.ndarray
    context: np.ndarray  # (T, len(CONTEXT))

    @classmethod
    def load(cls, dataset: str | Path, episode: int) -> "Source":
        from academy.dream.fit import Episodes

        ds = Dataset(dataset)
        table = ds.episode_table()
        row = table[table["episode_index"] == episode]
        if not len(row):
            raise ValueError(f"{dataset} has no episode {episode} (it holds {len(table)} episodes)")
        eps = Episodes.load([dataset])
        i = eps.names.index(f"{Path(dataset).name}#{episode}")
        seed = int(row["academy/seed"].iloc[0])
        if seed < 0:
            raise ValueError(f"{dataset} episode {episode} has no scene seed: its scene cannot be replayed in physics")
        return cls(str(dataset), episode, str(row["academy/task"].iloc[0]), seed, eps.x[i], eps.goal[i],
                   eps.action[i], eps.context[i])


def perturb(source: Source, cfg: VariationConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` starting states (n, X_DIM) and contexts (n, len(CONTEXT)) around the source's first frame."""
    from academy.sim.randomize import draw_context

    x0 = np.repeat(source.x[:1].astype(np.float64), n, 0)
    obj = x0[:, DIMS[STATE]:].reshape(n, N_OBJECTS, 7)
    on_bench = obj[0, :, 2] > BENCH_Z
    k = int(on_bench.sum())
    obj[:, on_bench, :2] += rng.uniform(-cfg.position_jitter, cfg.position_jitter, (n, k, 2))
    yaw = rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter, (n, k))
    turn = np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)
    obj[:, on_bench, 3:] = _quat_mul(turn, obj[:, on_bench, 3:])
    x0[:, DIMS[STATE]:] = obj.reshape(n, -1)
    context = np.stack([draw_context(cfg.context_ranges, rng) for _ in range(n)])
    return x0.astype(np.float32), context.astype(np.float32)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


@torch.no_grad()
def median_spread(model: WorldModel, x: np.ndarray, goal: np.ndarray, action: np.ndarray, context: np.ndarray) -> float:
    """The model's median ensemble spread over recorded (real) steps: the unit its uncertainty is judged in."""
    out = model.step(*(torch.from_numpy(np.asarray(v, np.float32)) for v in (x, goal, action, context)))
    return float(out["uncertainty"].median())


def source_spread(model: WorldModel, source: Source) -> float:
    """The model's median ensemble spread over the source episode's recorded (real) steps."""
    return median_spread(model, source.x[:-1], source.goal[:-1], source.action[:-1], source.context[:-1])


@torch.no_grad()
def dream_rollouts(model: WorldModel, policy, task: str, goal: np.ndarray, x0: np.ndarray, context: np.ndarray,
                   max_steps: int, cfg: VariationConfig, rng: np.random.Generator,
                   judge: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict:
    """Roll ``policy`` forward in ``model`` from each row of ``x0`` (``goal``: one for all rows, or
    one per row). A row is called a success where ``judge`` ((predicted states, their rows of ``x0``)
    -> bool, asked where the predicted reward reaches ``cfg.judge_from``) says so, or without a judge
    where the model's success head passes ``cfg.success_threshold``; it ends ``cfg.settle_steps``
    later, a success (with ``cfg.settle_recheck``: if the verdict still holds). Returns per-row
    states (T+1), executed actions (T), the policy's own ("labels"), predicted rewards, length,
    the step it was called a success (``called``; its length if never), success flag and mean
    uncertainty.
    A row that has ended leaves the batch, so the model and the policy step live rows only."""
    from academy.sim import robot
    from academy.sim.rollout_expert import ARM

    B = len(x0)
    policy.reset(B)
    states = np.zeros((B, max_steps + 1, X_DIM), np.float32)
    actions = np.zeros((B, max_steps, robot.N_ACTUATORS), np.float32)  # executed: the policy's plus the noise
    labels = np.zeros((B, max_steps, robot.N_ACTUATORS), np.float32)  # the policy's own
    rewards = np.zeros((B, max_steps), np.float32)
    states[:, 0] = x0
    success = np.zeros(B, bool)
    fired = np.full(B, -1)  # the step at which a row was first called a success
    length = np.full(B, max_steps)
    spread_sum = np.zeros(B)
    live = np.arange(B)  # the rows still rolling, in the order of the compacted batch
    x = torch.from_numpy(x0)
    g = torch.from_numpy(np.array(np.broadcast_to(goal, (B, goal.shape[-1])), np.float32))
    ctx = torch.from_numpy(context)
    noise = np.zeros((B, robot.N_ACTUATORS), np.float32)
    for t in range(max_steps):
        if t % cfg.hold_steps == 0:
            noise[:, ARM] = rng.normal(0.0, cfg.noise, (len(live), len(ARM)))
        xs = x.numpy()
        obs = {STATE: xs[:, :DIMS[STATE]], ENV: xs[:, DIMS[STATE]:], GOAL: g.numpy(), "task": np.full(len(live), task)}
        label = policy.act(obs).astype(np.float32)
        action = label + noise
        out = model.step(x, g, torch.from_numpy(action), ctx)
        spread_sum[live] += out["uncertainty"].numpy()
        x = out["x"]
        states[live, t + 1] = x.numpy()
        actions[live, t] = action
        labels[live, t] = label
        rewards[live, t] = out["reward"].numpy()
        xs = x.numpy()

        def holds(at: np.ndarray) -> np.ndarray:  # the verdict for these rows of the compacted batch
            if judge is None:
                return out["success"].numpy()[at] > cfg.success_threshold
            return judge(xs[at], live[at])

        if t + 1 >= cfg.min_steps:  # a first verdict, for rows not yet called a success
            ready = fired[live] < 0
            if judge is not None:
                ready &= out["reward"].numpy() >= cfg.judge_from
            new = np.flatnonzero(ready)
            if len(new):
                fired[live[new[holds(new)]]] = t + 1
        due = np.flatnonzero((fired[live] >= 0) & (t + 1 - fired[live] >= cfg.settle_steps))
        if len(due):  # settled: a success (with settle_recheck: if the verdict still holds)
            won = holds(due) if cfg.settle_steps and cfg.settle_recheck else np.ones(len(due), bool)
            success[live[due[won]]] = True
            length[live[due]] = t + 1
            stay = np.ones(len(live), bool)
            stay[due] = False
            live = live[stay]
            if not len(live):
                break
            policy.keep_rows(stay)
            rows = torch.from_numpy(stay)
            x, g, ctx, noise = x[rows], g[rows], ctx[rows], noise[stay]
    T = int(length.max())
    called = np.where(fired >= 0, fired, length)
    return {"states": states[:, : T + 1], "actions": actions[:, :T], "labels": labels[:, :T],
            "rewards": rewards[:, :T], "length": length, "called": called,
            "success": success, "uncertainty": spread_sum / length}


def dream(model_path: str | Path, policy_path: str | Path, dataset: str | Path, episode: int, out: str | Path | None,
          cfg: VariationConfig | None = None, on_batch: Callable[[int, int], None] | None = None) -> dict:
    """``cfg.variations`` variations of one stored episode; the kept ones are written to ``out`` (a
    dataset, appended to) as synthetic episodes of source "dream". Returns the summary and, under
    ``"rollouts"``, what a physics check needs."""
    from academy.data.collect import FPS, workcell_features
    from academy.learn.policy import Policy
    from academy.sim.env import CONTROL_DT
    from academy.sim.tasks import make_task

    cfg = cfg or VariationConfig()
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    model = WorldModel.load(model_path)
    policy = Policy.load(policy_path)
    source = Source.load(dataset, episode)
    if source.task not in policy.tasks:
        raise ValueError(f"the policy knows {policy.tasks}, not the episode's task '{source.task}'")
    task = make_task(source.task)
    max_steps = task.max_steps(CONTROL_DT)
    limit = cfg.max_uncertainty * source_spread(model, source)
    check_judge(cfg.judge)
    judge = TaskJudge(source.task, source.seed) if cfg.judge == "task" else None
    rng = np.random.default_rng(cfg.seed)
    kept_rows, judged, n_success, written = [], [], 0, 0
    writer_ds = None
    if out is not None:
        out = Path(out)
        writer_ds = Dataset(out) if (out / "meta/info.json").exists() else Dataset.create(
            out, FPS, workcell_features(context=True))
        if CONTEXT_KEY not in writer_ds.features or EXECUTED not in writer_ds.features:
            raise ValueError(f"{out} does not record the physical context and the executed commands: dreams go "
                             f"to a dataset that does (academy collect --context)")
    writer = writer_ds.writer(flush_every=200) if writer_ds is not None else None
    try:
        for start in range(0, cfg.variations, cfg.batch):
            n = min(cfg.batch, cfg.variations - start)
            x0, context = perturb(source, cfg, n, rng)
            r = dream_rollouts(model, policy, source.task, source.goal[0], x0, context, max_steps, cfg, rng,
                               None if judge is None else lambda xs, rows: judge(xs))
            keep = r["success"] & (r["uncertainty"] <= limit)
            n_success += int(r["success"].sum())
            for i in range(n):
                judged.append({"index": start + i, "success": bool(r["success"][i]), "kept": bool(keep[i]),
                               "uncertainty": float(r["uncertainty"][i]), "length": int(r["length"][i]),
                               "called": int(r["called"][i]),
                               "objects": x0[i, DIMS[STATE]:].tolist(), "context": context[i].tolist(),
                               "actions": r["actions"][i, : r["length"][i]]})  # for the physics check
                if keep[i]:
                    kept_rows.append(start + i)
            if writer is not None:
                for i in np.flatnonzero(keep):
                    writer.add_episode(_frames(r, i, source.goal[0], context[i]),
                                       EpisodeMeta(task=source.task, source="dream", robot_serial="dream",
                                                   outcome="success", synthetic=True, seed=source.seed),
                                       task.description)
                    written += 1
            if on_batch:
                on_batch(start + n, len(kept_rows))
    finally:
        if writer is not None:
            writer.close()
        if judge is not None:
            judge.close()
    seconds = time.time() - t0
    return {"source": f"{source.dataset}#{source.episode}", "task": source.task, "seed": source.seed,
            "variations": cfg.variations, "model_success": n_success, "kept": len(kept_rows), "written": written,
            "uncertainty_limit": limit, "seconds": round(seconds, 1),
            "variations_per_second": round(cfg.variations / max(seconds, 1e-9), 1),
            "config": {k: v for k, v in cfg.__dict__.items()}, "rollouts": judged}


def _frames(r: dict, i: int, goal: np.ndarray, context: np.ndarray) -> dict[str, np.ndarray]:
    """The stored episode of a dream: up to the step it was called a success. The settling steps
    after it are replayed in the physics check but not stored: recorded episodes end at success,
    so the model has never seen what follows one, and its states there are not to be learned from."""
    T = int(r["called"][i])
    xs = r["states"][i, :T]
    done = np.zeros(T, bool)
    done[-1] = True
    return {STATE: xs[:, :DIMS[STATE]], ENV: xs[:, DIMS[STATE]:X_DIM], GOAL: np.repeat(goal[None], T, 0),
            ACTION: r["labels"][i, :T], EXECUTED: r["actions"][i, :T],
            "next.reward": r["rewards"][i, :T].astype(np.float32),
            "next.done": done, CONTEXT_KEY: np.repeat(context[None], T, 0).astype(np.float32)}


REPLAY_HOLD = 10  # steps a replay holds a dream's last command, should the physics not yet have met the rule


def replay(env, seed: int, objects, context, actions) -> bool:
    """One dream's commands replayed open loop in ``env`` (a ``WorkcellEnv`` of its task) from its
    scene and physics; True if the task's rule is met. The env is left where the replay ended."""
    env.reset(seed, context=context, objects=np.asarray(objects).reshape(N_OBJECTS, 7))
    for a in actions:
        _, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            if info["success"]:
                return True
            break
    for _ in range(REPLAY_HOLD):  # the dream ended at its predicted success: hold the last command a moment
        _, _, terminated, _, _ = env.step(actions[-1])
        if terminated:
            return True
    return False


def _replay_job(args: tuple) -> list[bool]:
    task, seed, items = args
    from academy.sim.env import WorkcellEnv

    env = WorkcellEnv(task)
    wins = [replay(env, seed, objects, context, actions) for objects, context, actions in items]
    env.close()
    return wins


def check_in_physics(summary: dict, n: int = 100, workers: int = 2, seed: int = 0) -> dict:
    """Replay up to ``n`` kept and ``n`` rejected variations open loop in the physics; the share
    of each that succeeds there."""
    rng = np.random.default_rng(seed)
    rows = summary["rollouts"]
    out = {}
    for label, pick in (("kept", [r for r in rows if r["kept"]]), ("rejected", [r for r in rows if not r["kept"]])):
        chosen = [pick[i] for i in sorted(rng.choice(len(pick), min(n, len(pick)), replace=False))] if pick else []
        items = [(r["objects"], r["context"], r["actions"]) for r in chosen]
        chunks = [items[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=SPAWN) as pool:
            wins = [w for part in pool.map(_replay_job, [(summary["task"], summary["seed"], c) for c in chunks])
                    for w in part]
        out[label] = {"replayed": len(wins), "succeeded": int(sum(wins)),
                      "share": round(float(np.mean(wins)), 3) if wins else None}
    return out
