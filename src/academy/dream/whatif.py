"""What-if rehearsal: the policy run in the world model under physics the store never recorded.

For each task, ``episodes`` starting scenes are drawn from the store (the first frames of its
episodes of that task, with their goals) and the policy is rolled forward in the model without
exploration noise (``dream_rollouts``): once under each episode's recorded physics (the
reference) and once per what-if, whose physics is drawn per scene from the what-if's ranges.
A rehearsal ends in success where the task's own rule holds in the predicted state, in the
scene of the episode it started from (``judge="task"``, ``dream/judge.py``), or with ``judge="head"``
where the model's success head fires. The model's predicted success per task and condition, its mean uncertainty (relative to the
reference), and the skills it predicts will fail: a drop of at least ``flag_drop`` from the
reference. The same scenes under the same what-ifs can be run in physics
(``benchmarks/dream_whatif.py``) to see how far to trust the prediction.
"""

from __future__ import annotations

import numpy as np
import torch

from academy.dream.model import WorldModel
from academy.dream.variations import VariationConfig, dream_rollouts

# The default what-ifs: outside what the store's context data drew (friction 0.6..1.4, mass 0.7..1.6).
WHAT_IFS = {
    "slippery": {"friction": (0.35, 0.6)},
    "heavy": {"object_mass": (1.6, 2.4)},
    "slippery and heavy": {"friction": (0.35, 0.6), "object_mass": (1.6, 2.4)},
}


def starting_scenes(eps, task: str, n: int, seed: int) -> dict:
    """``n`` first frames (x, goal, context, name, scene seed) of the ``Episodes`` of ``task``, drawn
    with replacement when there are fewer."""
    idx = [i for i, t in enumerate(eps.tasks) if t == task]
    rng = np.random.default_rng([seed, 41])
    pick = rng.choice(idx, n, replace=len(idx) < n)
    return {"x": np.stack([eps.x[i][0] for i in pick]), "goal": np.stack([eps.goal[i][0] for i in pick]),
            "context": np.stack([eps.context[i][0] for i in pick]), "names": [eps.names[i] for i in pick], "seeds": [eps.seeds[i] for i in pick]}


def rehearse(model_path: str, policy_path: str, datasets: list[str], what_ifs: dict[str, dict] | None = None,
             tasks: list[str] | None = None, episodes: int = 200, seed: int = 0, flag_drop: float = 0.1,
             threads: int = 2, judge: str = "task") -> dict:
    """{task: {condition: {predicted_success, uncertainty}}, "flagged": [...], ...}. ``tasks``
    default: those the policy knows that the datasets hold episodes of."""
    from academy.dream.fit import Episodes
    from academy.dream.judge import TaskJudge, check_judge
    from academy.learn.policy import Policy
    from academy.sim.env import CONTROL_DT
    from academy.sim.randomize import draw_context
    from academy.sim.tasks import make_task

    torch.set_num_threads(threads)
    model, policy = WorldModel.load(model_path), Policy.load(policy_path)
    what_ifs = WHAT_IFS if what_ifs is None else what_ifs
    eps = Episodes.load(datasets)
    tasks = tasks or [t for t in policy.tasks if t in eps.tasks]
    unknown = [t for t in tasks if t not in policy.tasks]
    if unknown:
        raise ValueError(f"the policy knows {policy.tasks}, not {unknown}")
    absent = [t for t in tasks if t not in eps.tasks] or ([] if tasks else list(policy.tasks))
    if absent:
        raise ValueError(f"the datasets {datasets} hold no episodes of {absent}: no scenes to rehearse")
    check_judge(judge)
    cfg = VariationConfig(noise=0.0)
    out: dict = {"episodes": episodes, "judge": judge, "what_ifs": {k: {t: list(r) for t, r in v.items()} for k, v in what_ifs.items()},
                 "tasks": {}, "flagged": []}
    for task in tasks:
        scenes = starting_scenes(eps, task, episodes, seed)
        max_steps = make_task(task).max_steps(CONTROL_DT)
        seeds = np.asarray(scenes["seeds"])
        if judge == "task" and (seeds < 0).any():
            raise ValueError(f"{int((seeds < 0).sum())} {task} scenes come from episodes without a scene seed: the "
                             f"task's rule needs their scenes (judge='head' uses the model's success head)")
        rule = TaskJudge(task) if judge == "task" else None
        rows = {}
        for k, (name, ranges) in enumerate({"as recorded": None, **what_ifs}.items()):
            rng = np.random.default_rng([seed, k])
            context = scenes["context"] if ranges is None else np.stack(
                [draw_context(ranges, rng) for _ in range(episodes)]).astype(np.float32)
            r = dream_rollouts(model, policy, task, scenes["goal"], scenes["x"].copy(), context, max_steps, cfg, rng,
                               None if rule is None else lambda xs, at: rule(xs, seeds[at]))
            rows[name] = {"predicted_success": round(float(r["success"].mean()), 3),
                          "uncertainty": float(r["uncertainty"].mean()), "contexts": context.tolist()}
        if rule is not None:
            rule.close()
        ref = rows["as recorded"]
        for name, row in rows.items():
            row["uncertainty_vs_recorded"] = round(row["uncertainty"] / max(ref["uncertainty"], 1e-9), 2)
            drop = ref["predicted_success"] - row["predicted_success"]
            if name != "as recorded" and drop >= flag_drop:
                out["flagged"].append({"task": task, "what_if": name, "drop": round(drop, 3)})
        out["tasks"][task] = rows
        out.setdefault("scenes", {})[task] = {"names": scenes["names"], "seeds": scenes["seeds"]}
    return out
