"""Why kept place_part dreams fail when their commands are replayed in the physics.

    python benchmarks/dream_replay_trace.py --model M --policy P --source DATASET#EPISODE \
        --variations 1000 --replay 40 --settle 10

Dreams ``--variations`` variations of a place_part episode (``academy.dream.variations``, the
task's rule as judge, ``--settle`` steps after the rule first holds, ``--recheck`` to require it
to hold still then), then replays the commands
of up to ``--replay`` kept dreams open loop in the MuJoCo workcell from the same scene and
physics, as ``check_in_physics`` does, and sorts each by how it ends there:

- ``succeeded``: the physics met the rule (``replay``, the same replay as ``check_in_physics``);
- ``still_touched``: at the dream's end the part is within 15 mm of seated but a robot geom is
  still on it: the hand lets go later in the physics than in the model;
- ``not_in_socket``: the part is 15 mm or more above its seat (it rests on the socket's rim or is
  still held above it), where the model had it seated;
- ``other``: the rest.

For each it also gives the part's offset from the socket's centre and its height above the seat,
in the model when it called the dream a success and in the physics at the replay's end, and the model's spread over the dream against its spread on the source's real steps.

Writes benchmarks/results/dream_replay_trace.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from academy.dream.judge import TaskJudge
from academy.dream.model import DIMS, N_OBJECTS, STATE, WorldModel
from academy.dream.variations import Source, VariationConfig, dream_rollouts, perturb, replay, source_spread
from academy.learn.policy import Policy
from academy.sim.env import CONTROL_DT, WorkcellEnv
from academy.sim.tasks import make_task
from academy.sim.tasks.place_part import SEAT_Z
from academy.sim.world import OBJECTS

HELD_UP = 0.015  # m above the seat: the part is not in the socket


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--source", required=True, help="DATASET#EPISODE of a place_part episode")
    p.add_argument("--variations", type=int, default=1000)
    p.add_argument("--replay", type=int, default=40)
    p.add_argument("--settle", type=int, default=VariationConfig.settle_steps)
    p.add_argument("--recheck", action="store_true", help="a dream's call must still hold after the settling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/dream_replay_trace.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    dataset, _, episode = args.source.rpartition("#")
    source = Source.load(dataset, int(episode))
    if source.task != "place_part":
        raise SystemExit(f"{args.source} is a {source.task} episode: this trace reads place_part's socket")
    cfg = VariationConfig(variations=args.variations, settle_steps=args.settle,
                          settle_recheck=args.recheck, seed=args.seed)
    model, policy = WorldModel.load(args.model), Policy.load(args.policy)
    rng = np.random.default_rng(cfg.seed)
    x0, context = perturb(source, cfg, args.variations, rng)
    judge = TaskJudge(source.task, source.seed)
    unit = source_spread(model, source)
    r = dream_rollouts(model, policy, source.task, source.goal[0], x0, context,
                       make_task(source.task).max_steps(CONTROL_DT), cfg, rng, lambda xs, rows: judge(xs))
    judge.close()
    kept = np.flatnonzero(r["success"] & (r["uncertainty"] <= cfg.max_uncertainty * unit))
    part = OBJECTS.index("part")
    env = WorkcellEnv(source.task)
    rows = []
    for i in kept[: args.replay]:
        T = int(r["length"][i])
        won = replay(env, source.seed, x0[i, DIMS[STATE]:], context[i], r["actions"][i, :T])
        predicted = r["states"][i, r["called"][i], DIMS[STATE]:].reshape(N_OBJECTS, 7)[part]  # as called a success
        real = env.world.object_pose(env.data, "part")
        fixture = np.asarray(env.goal["fixture"][:2])
        touched = env.world.touching_robot(env.data, "part")
        height = real[2] - SEAT_Z
        ending = ("succeeded" if won else "not_in_socket" if height >= HELD_UP
                  else "still_touched" if touched else "other")
        rows.append({"variation": int(i), "steps": T, "ending": ending,
                     "centre_offset_mm": {"model": round(float(np.linalg.norm(predicted[:2] - fixture)) * 1e3, 2),
                                          "physics": round(float(np.linalg.norm(real[:2] - fixture)) * 1e3, 2)},
                     "height_above_seat_mm": {"model": round(float(predicted[2] - SEAT_Z) * 1e3, 2),
                                              "physics": round(float(height) * 1e3, 2)},
                     "spread_vs_real": round(float(r["uncertainty"][i] / unit), 3)})
    env.close()
    counts = {k: sum(row["ending"] == k for row in rows) for k in ("succeeded", "still_touched", "not_in_socket",
                                                                     "other")}
    spread = {k: round(float(np.mean([row["spread_vs_real"] for row in rows if row["ending"] == k])), 3)
              for k in counts if counts[k]}
    flags = [f"--{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
             for k, v in vars(args).items() if k != "out" and v is not False]
    result = {"command": "python benchmarks/dream_replay_trace.py " + " ".join(flags),
              "variations": args.variations, "called_success": int(r["success"].sum()), "kept": int(len(kept)),
              "replayed": len(rows), "endings": counts, "mean_spread_vs_real_by_ending": spread, "dreams": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "dreams"}, indent=2))


if __name__ == "__main__":
    main()
