"""``academy practice``: residual PPO on top of a learned policy, with a curriculum and randomization.

One run: rollout workers (in-process or Ray actors) collect steps from scenes of every task at
the curriculum's current levels, the learner makes a PPO update, the curriculum promotes or
demotes each task by its success rate, and every ``eval_every`` updates the practiced policy is
evaluated on fixed held-out seeds at the target difficulty, under the randomization practised for
(drawn per seed; ``eval_randomization`` overrides it, 0 being the nominal robot); the best evaluation
is kept (the base alone is the first candidate), not the last.

The run folder (the artefact the next stages read):

    policy/        the best practiced policy: the base checkpoint's files plus residual.json/.pt;
                   ``academy eval --policy RUN/policy`` and ``Policy.load`` use it as it is
    log.jsonl      one line per update: steps, time split, rewards, PPO statistics, curriculum levels
    practice.json  the configuration, every evaluation, the best one, throughput
    curve.png      the learning curve: evaluation success per task, training success, levels
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from academy.learn.policy import Policy
from academy.practice.curriculum import Curriculum
from academy.practice.ppo import PPOConfig, update
from academy.practice.residual import SPACES, ResidualActorCritic, default_scale, feature_dim, save_residual
from academy.practice.rollout import RobotScenes, RolloutWorker, policy_batch
from academy.sim.batched import BatchedWorkcellEnv

PRACTICE_EVAL_SEED = 200000  # model selection seeds: apart from demos (0..) and final evaluation (100000..)


@dataclass
class PracticeConfig:
    policy: str
    out: str
    tasks: list[str] | None = None  # default: every task the policy knows
    minutes: float = 20.0
    iterations: int | None = None  # stop after this many updates (whichever of the two comes first)
    scenes_per_task: int = 12
    steps: int = 64  # control steps per scene per update
    workers: int = 2
    backend: str = "local"  # or "ray"
    seed: int = 0
    eval_every: int = 15
    eval_episodes: int = 16  # per task
    curriculum: bool = True
    target: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> knob -> value (the top)
    robot: str | None = None  # fine-tune on this reality robot (its physics, not the simulation's)
    space: str = "hands"  # the residual's action space: hands (grasp-site offsets) or joints
    hidden: int = 256
    init_std: float = 0.3
    noise_hold: int = 10  # control steps each exploration draw is held (1: white noise)
    # practice in imagination (academy.dream.imagine): the world model steps the scenes, not the physics
    dream_model: str | None = None
    dream_data: list[str] = field(default_factory=list)  # the store's episodes the branches start from
    dream_horizon: int = 40  # control steps per branch
    dream_context: dict | None = None  # draw each branch's physics from these ranges (default: the recorded)
    dream_penalty: float = 1.0  # reward charged per unit of ensemble spread (1 = the spread on real steps)
    dream_judge: str = "task"  # what ends a branch in success: the task's rule on the predicted state, or "head"
    eval_context: dict | None = None  # selection evaluations draw each scene's physics from these ranges
    # selection evaluations' randomization factor (randomization_at); None: each task's randomization target,
    # the conditions practice is for (0: the nominal robot)
    eval_randomization: float | None = None
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def check(self) -> None:
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', got '{self.backend}'")
        for name in ("scenes_per_task", "steps", "workers", "eval_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if self.space not in SPACES:
            raise ValueError(f"residual space must be one of {SPACES}, got '{self.space}'")
        if self.noise_hold < 1:
            raise ValueError(f"noise_hold must be at least 1, got {self.noise_hold}")
        if self.dream_model:
            if self.robot:
                raise ValueError("practice in imagination uses the world model, not a robot: give --dream or --robot")
            if not self.dream_data:
                raise ValueError("practice in imagination needs datasets to branch from (--dream-data)")
            if self.dream_horizon < 1:
                raise ValueError(f"dream_horizon must be at least 1, got {self.dream_horizon}")
            from academy.dream.judge import check_judge

            check_judge(self.dream_judge, "dream_judge")


class LocalBackend:
    def __init__(self, worker_args: list[dict]):
        self.workers = [RolloutWorker(**a) for a in worker_args]

    def collect(self, weights: dict, plan: dict, steps: int, update: int) -> list[dict]:
        return [w.collect(weights, plan, steps, update) for w in self.workers]

    def close(self) -> None:
        for w in self.workers:
            w.close()


class RayBackend:
    """The same workers as Ray actors (one CPU each) on a local Ray instance, or the cluster
    that ``RAY_ADDRESS`` names."""

    def __init__(self, worker_args: list[dict]):
        try:
            import ray
        except ImportError:
            raise ValueError("backend 'ray' needs Ray: pip install -e '.[ray]'") from None

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(num_cpus=max(len(worker_args), os.cpu_count() or 1), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        remote = ray.remote(num_cpus=1)(RolloutWorker)
        self.workers = [remote.remote(**{**a, "nthread": 1}) for a in worker_args]

    def collect(self, weights: dict, plan: dict, steps: int, update: int) -> list[dict]:
        ref = self.ray.put(weights)
        return self.ray.get([w.collect.remote(ref, plan, steps, update) for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        if self.started:
            self.ray.shutdown()


def evaluate_scenes(policy: Policy, tasks: list[str], episodes: int, plan: dict, first_seed: int = PRACTICE_EVAL_SEED,
                    robot: str | None = None, context_ranges: dict | None = None) -> dict[str, float]:
    """Success rate per task over seeds ``first_seed + k`` (k < episodes), all scenes stepped together.

    The scenes use the plan's difficulty and randomization (drawn per seed: fixed seeds give
    fixed conditions), the nominal robot's when the plan has none, or ``robot``'s own; with
    ``context_ranges`` a physical context drawn per seed.
    """
    scene_tasks = [t for t in tasks for _ in range(episodes)]
    env = RobotScenes(robot, scene_tasks) if robot else BatchedWorkcellEnv(scene_tasks, n=len(scene_tasks))
    for i, e in enumerate(env.envs):
        e.set_task(scene_tasks[i], plan[scene_tasks[i]][0])
        if not robot:
            e.randomization = plan[scene_tasks[i]][1]
        if context_ranges:
            e.context_ranges = dict(context_ranges)
    obs = env.reset(seeds=[first_seed + i % episodes for i in range(len(scene_tasks))])
    policy.reset(len(scene_tasks))
    outcome = np.full(len(scene_tasks), -1)
    while (outcome < 0).any():
        obs, _, _, _, info = env.step(policy.act(policy_batch(obs)))
        first = info["reset"] & (outcome < 0)
        outcome[first] = info["final_success"][first]
    for e in env.envs:
        e.close()
    return {t: float(np.mean(outcome[[i for i, s in enumerate(scene_tasks) if s == t]])) for t in tasks}


def _merge(results: list[dict]) -> dict[str, np.ndarray]:
    out = {k: np.concatenate([r[k] for r in results], axis=1) for k in results[0] if k not in ("last_value", "tasks", "timing")}
    out["last_value"] = np.concatenate([r["last_value"] for r in results])
    out["tasks"] = np.concatenate([r["tasks"] for r in results])
    out["timing"] = {k: float(sum(r["timing"][k] for r in results)) for k in results[0]["timing"]}
    return out


def _save_policy(base: Path, dest: Path, net: ResidualActorCritic) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp, ignore=shutil.ignore_patterns("residual.*"))
    save_residual(tmp, net)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)  # a crash leaves the previous best or the new one, never half of one


def plot_curve(log: list[dict], evals: list[dict], path: Path, window: int = 10) -> None:
    """Evaluation success per task (solid), training success over the last ``window`` updates
    (faint; at the task's current level), and each curriculum ladder's position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, height_ratios=[3, 2])
    tasks = list(evals[0]["success"]) if evals else []
    for k, task in enumerate(tasks):
        colour = f"C{k}"
        ax.plot([e["env_steps"] for e in evals], [e["success"][task] for e in evals], marker="o", color=colour,
                label=f"{task}: evaluation")
        xs, ys = [], []
        for i, r in enumerate(log):
            recent = log[max(0, i - window + 1) : i + 1]
            n = sum(x["episodes"][task] for x in recent)
            if n:
                wins = sum((x["train_success"][task] or 0) * x["episodes"][task] for x in recent)
                xs.append(r["env_steps"])
                ys.append(wins / n)
        ax.plot(xs, ys, color=colour, alpha=0.35, label=f"{task}: training episodes")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("practice: evaluation (fixed held-out seeds, target difficulty) and training")
    styles = ["-", "--", ":", "-."]
    for k, task in enumerate(tasks):
        names = list(log[0]["ladders"][task]) if log else []
        for j, name in enumerate(names):
            bx.step([r["env_steps"] for r in log], [r["ladders"][task][name] for r in log], where="post",
                    color=f"C{k}", linestyle=styles[j % len(styles)], label=f"{task}.{name}")
    bx.set_ylabel("curriculum (0 easiest, 1 target)")
    bx.set_ylim(-0.05, 1.05)
    bx.set_xlabel("environment steps")
    if bx.get_legend_handles_labels()[0]:  # no curriculum terms: no legend to draw
        bx.legend(fontsize=6, loc="upper left", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def next_update_fits(elapsed: float, last_update: float, last_eval: float, budget: float) -> bool:
    """The budget holds the whole run: go on only while the next update (as long as the last) and
    one evaluation after it (as long as the last) still fit. That evaluation is the update's own if
    it brings one, else the closing one. All in seconds."""
    return elapsed + last_update + last_eval < budget


def practice(cfg: PracticeConfig, on_update: Callable[[dict], None] | None = None) -> dict[str, Any]:
    cfg.check()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    base_path = Path(cfg.policy)
    base = Policy.load(base_path, base_only=True)
    tasks = cfg.tasks or list(base.tasks)
    unknown = [t for t in tasks if t not in base.tasks]
    if unknown:
        raise ValueError(f"the policy at {base_path} does not know the task(s) {unknown}; it knows {base.tasks}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # in imagination the scenes are the model's: no difficulty or randomization to climb
    curriculum = Curriculum(tasks, target=cfg.target, enabled=cfg.curriculum and not cfg.dream_model,
                            window=cfg.scenes_per_task)
    sizes = {"feat_dim": feature_dim(len(base.tasks), base.cfg.obs_dims), "n_tasks": len(base.tasks),
             "scale": default_scale(cfg.space), "hidden": cfg.hidden, "init_std": cfg.init_std, "space": cfg.space}
    net = ResidualActorCritic(**sizes)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.ppo.lr)
    generator = torch.Generator().manual_seed(cfg.seed)

    dream = None
    if cfg.dream_model:
        dream = {"model": cfg.dream_model, "datasets": list(cfg.dream_data), "horizon": cfg.dream_horizon,
                 "context_ranges": cfg.dream_context, "penalty": cfg.dream_penalty,
                 "judge": cfg.dream_judge}
    scene_tasks = [t for t in tasks for _ in range(cfg.scenes_per_task)]
    shares = np.array_split(np.arange(len(scene_tasks)), min(cfg.workers, len(scene_tasks)))
    worker_args = [{"policy": str(base_path), "scene_tasks": [scene_tasks[i] for i in idx],
                    "seed": cfg.seed * 1000 + 1_000_003 * w, "net_sizes": sizes, "robot": cfg.robot,
                    "gamma": cfg.ppo.gamma, "noise_hold": cfg.noise_hold, "dream": dream}
                   for w, idx in enumerate(shares)]
    backend = RayBackend(worker_args) if cfg.backend == "ray" else LocalBackend(worker_args)

    # evaluation: every ladder at its top, under the randomization practised for (or eval_randomization)
    # imagined practice is judged in the nominal physics, as it was
    eval_factor = cfg.eval_randomization if cfg.eval_randomization is not None else (0.0 if cfg.dream_model else None)
    target_plan = {t: curriculum.target_settings(t, eval_factor) for t in tasks}
    evaluator = Policy.load(base_path, base_only=True)

    def run_eval(update_no: int, env_steps: int) -> dict:
        evaluator.residual = net
        t0 = time.time()
        success = evaluate_scenes(evaluator, tasks, cfg.eval_episodes, target_plan, robot=cfg.robot,
                                  context_ranges=cfg.eval_context)
        return {"update": update_no, "env_steps": env_steps, "success": success,
                "mean": float(np.mean(list(success.values()))), "seconds": time.time() - t0}

    def evaluate_and_keep(update_no: int, env_steps: int) -> dict:
        """Evaluate; if it beats the best so far, keep this residual as the run's policy."""
        nonlocal best
        evals.append(run_eval(update_no, env_steps))
        timing["eval"] += evals[-1]["seconds"]
        if evals[-1]["mean"] > best["mean"]:
            best = evals[-1]
            _save_policy(base_path, out / "policy", net)
        return evals[-1]

    log, evals = [], []
    t_start = time.time()
    timing = {"collect": 0.0, "physics": 0.0, "policy": 0.0, "learn": 0.0, "eval": 0.0}
    env_steps = 0
    net.eval()
    evals.append(run_eval(0, 0))
    timing["eval"] += evals[-1]["seconds"]
    best = evals[0]
    _save_policy(base_path, out / "policy", net)
    logf = (out / "log.jsonl").open("w")
    update_no, last_update = 0, 0.0
    try:
        while True:
            if cfg.iterations is not None and update_no >= cfg.iterations:
                break
            if not next_update_fits(time.time() - t_start, last_update, evals[-1]["seconds"], 60 * cfg.minutes):
                break
            update_no += 1
            t0 = time.time()
            weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
            batch = _merge(backend.collect(weights, curriculum.plan(), cfg.steps, update_no))
            t1 = time.time()
            timing["collect"] += t1 - t0
            timing["physics"] += batch["timing"]["physics"]
            timing["policy"] += batch["timing"]["policy"]
            env_steps += batch["rewards"].size
            done = batch["dones"]
            ended = {t: [] for t in tasks}
            for step, scene in zip(*np.nonzero(done)):
                task = base.tasks[batch["tasks"][scene]]
                ended[task].append(bool(batch["successes"][step, scene]))
                curriculum.record(task, int(scene), bool(batch["successes"][step, scene]), int(batch["started"][step, scene]))
            if net.norm.count == 0:  # fit the features' scale before the first update (the actor's output
                net.norm.update(batch["feats"])  # is still zero, so the collected log-probabilities hold)
            net.train()
            stats = update(net, opt, batch, cfg.ppo, generator)
            net.eval()
            net.norm.update(batch["feats"])
            changes = curriculum.update(update_no)
            timing["learn"] += time.time() - t1
            last_update = time.time() - t0
            row = {
                "update": update_no, "env_steps": env_steps, "seconds": time.time() - t_start,
                "reward_per_step": float(batch["rewards"].mean()),
                "episodes": {t: len(v) for t, v in ended.items()},
                "train_success": {t: (float(np.mean(v)) if v else None) for t, v in ended.items()},
                **stats, "levels": curriculum.levels(), "ladders": curriculum.positions(), "changes": changes,
            }
            if update_no % cfg.eval_every == 0:
                row["eval"] = evaluate_and_keep(update_no, env_steps)["success"]
                plot_curve(log + [row], evals, out / "curve.png")
            log.append(row)
            logf.write(json.dumps(row) + "\n")
            logf.flush()
            if on_update:
                on_update(row)
        if log and "eval" not in log[-1]:  # always end with an evaluation of the last update
            evaluate_and_keep(update_no, env_steps)
    finally:
        logf.close()
        backend.close()
    wall = time.time() - t_start
    plot_curve(log, evals, out / "curve.png")
    summary = {
        "config": {**asdict(cfg), "tasks": tasks},
        "updates": update_no, "env_steps": env_steps, "wall_seconds": wall,
        "env_steps_per_second": env_steps / max(timing["collect"], 1e-9),
        "time_share": {k: v / wall for k, v in timing.items()},
        "evaluations": evals, "best": best, "before": evals[0],
        "curriculum": curriculum.levels(), "curriculum_history": curriculum.history,
    }
    (out / "practice.json").write_text(json.dumps(summary, indent=2))
    return summary
