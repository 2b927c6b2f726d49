"""What a person's pauses do to behaviour cloning, and what dropping idle steps gives back.

    python benchmarks/watch_pauses.py --task handover --demos 15 --steps 6000 --episodes 50

A person filmed doing a task pauses (the footage's people do, as people do); a replay of the
footage pauses with them, and a policy that learns from it learns to stand still where it
should go on. This measures it without footage, on the scripted expert's demos of TASK (scene
seeds 1000..) in three forms:
  clean    the expert's demos as recorded;
  paused   each replayed with 1-3 pauses of 0.5-2 s inserted at random steps (seeded);
  dropped  the paused ones after ``academy.watch.pipeline.drop_idle``, what ``academy watch``
           does to every watched demo before it is stored.
The same network (same steps and seed) learns from each and is evaluated on the same held-out
seeds in the nominal simulation. Writes benchmarks/results/watch_pauses.json with each
success rate and its ratio to clean's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from academy.data import Dataset
from academy.data.collect import FPS, episode_frames, workcell_features
from academy.data.store import EpisodeMeta
from academy.evaluate import evaluate
from academy.learn.train import TrainConfig, train
from academy.sim.env import WorkcellEnv
from academy.sim.experts import make_expert
from academy.sim.rollout_expert import rollout
from academy.sim.tasks import make_task
from academy.watch.pipeline import Commands, drop_idle, idle_steps

FORMS = ("clean", "paused", "dropped")


def with_pauses(actions: list, rng: np.random.Generator) -> list:
    """1-3 pauses of 10-40 steps (0.5-2 s): the command held where it was."""
    actions = list(actions)
    for _ in range(int(rng.integers(1, 4))):
        at, k = int(rng.integers(5, len(actions) - 5)), int(rng.integers(10, 41))
        actions = actions[:at] + [actions[at - 1]] * k + actions[at:]
    return actions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="handover")
    ap.add_argument("--demos", type=int, default=15, help="expert scenes recorded (seeds 1000..)")
    ap.add_argument("--steps", type=int, default=6000, help="training steps, the same for every form")
    ap.add_argument("--episodes", type=int, default=50, help="held-out evaluation episodes")
    ap.add_argument("--work", default="academy-data/bench/watch-pauses")
    ap.add_argument("--out", default="benchmarks/results/watch_pauses.json")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.time()
    env, sentence = WorkcellEnv(args.task), make_task(args.task).description
    rng = np.random.default_rng(0)
    demos = {k: [] for k in FORMS}
    for seed in range(1000, 1000 + args.demos):
        clean = rollout(env, make_expert(args.task), seed, record=True)
        if not clean.success:
            continue
        paused = rollout(env, Commands(with_pauses(clean.actions, rng)), seed, record=True)
        if not paused.success:  # a pause that broke the task: no demo in any form
            continue
        for k, r in zip(FORMS, (clean, paused, drop_idle(env, paused)[0])):
            demos[k].append(r)
    steps = {k: int(sum(len(r.actions) for r in demos[k])) for k in FORMS}
    idle = {k: int(sum(idle_steps(r).sum() for r in demos[k])) for k in FORMS}
    print(f"{len(demos['clean'])} demos; steps {steps}; idle steps {idle}")
    results = {"task": args.task, "demos": len(demos["clean"]), "steps": args.steps, "episodes": args.episodes,
               "demo_steps": steps, "idle_steps": idle, "forms": {}}
    for k in FORMS:
        ds = Dataset.create(work / k, FPS, workcell_features())
        with ds.writer(flush_every=10) as writer:
            for r in demos[k]:
                writer.add_episode(episode_frames(r), EpisodeMeta(task=args.task, source="expert", outcome="success",
                                                                  seed=r.seed), sentence)
        info = train(work / k, work / f"policy-{k}", TrainConfig(max_steps=args.steps, max_minutes=1e6, seed=0),
                     tasks=[args.task])
        success = evaluate(str(work / f"policy-{k}"), [args.task], episodes=args.episodes, reality=False)
        results["forms"][k] = {"success": success[args.task]["nominal_success"], "val_loss": info["val_loss"]}
        print(k, results["forms"][k], flush=True)
    base = results["forms"]["clean"]["success"]
    for k in FORMS:
        results["forms"][k]["ratio_to_clean"] = results["forms"][k]["success"] / base if base > 0 else None
    results["wall_seconds"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
