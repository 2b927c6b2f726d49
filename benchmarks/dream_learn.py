"""Learning from dreams: the policy learned from the demos and their dreamed variations, against the
policy learned from the demos alone, on the held-out variation set, with zero extra real episodes.

    academy learn --dataset D --out BASE --minutes 6
    academy dream fit --dataset D [--dataset MORE] --out MODEL --minutes 10
    python benchmarks/dream_learn.py --demos D --policy BASE --model MODEL --minutes 6

``BASE`` is the baseline: ``academy learn`` on the demos ``D``. The script varies the first
``--sources`` successful demos of ``--task``, ``--variations`` dreams in all, split evenly: BASE acts
in the world model with exploration noise, the physics of each dream drawn from ``DREAM_CONTEXT``
(friction 0.35..1.4, object mass 0.7..2.4, beyond the store's recorded ranges), and the
dreams that the task's own rule calls a success (``--judge task``) with a spread within bounds are
kept. It appends them to a copy of ``D`` and learns on that copy for ``--minutes`` with ``academy
learn``'s default settings and the baseline's width and chunk (so BASE should be learned with the
defaults too); the dreams' frames are drawn ``--dream-weight`` times as often as a demo's. Both
policies are then evaluated on the held-out variation set (friction 0.35..0.6, object mass
1.6..2.4, scene seeds 300000.., layouts never demonstrated) and on the nominal held-out seeds.

The true test of the dreams is measured on the way: per source, up to ``--check`` kept and
``--check`` rejected dreams are replayed open loop in the physics.

Writes benchmarks/results/dream_learn.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dream_practice import DREAM_CONTEXT, GOAL_POINTS, RESULTS, _both, gains  # noqa: E402

from academy.data import Dataset  # noqa: E402
from academy.dream.variations import VariationConfig, check_in_physics, dream  # noqa: E402
from academy.learn.policy import Policy  # noqa: E402
from academy.learn.train import TrainConfig, train  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", required=True, help="the dataset the baseline learned from")
    p.add_argument("--policy", required=True, help="the baseline: academy learn on --demos")
    p.add_argument("--model", default="academy-data/world-models/default")
    p.add_argument("--out", default="academy-data/dream-learn")
    p.add_argument("--task", default="place_part")
    p.add_argument("--sources", type=int, default=10)
    p.add_argument("--variations", type=int, default=10000)
    p.add_argument("--judge", default="task")
    p.add_argument("--settle", type=int, default=VariationConfig.settle_steps,
                   help="steps a dream goes on after it is called a success (the release played out)")
    p.add_argument("--dream-weight", type=float, default=1.0)
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--check", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    base = Policy.load(args.policy)
    if args.task not in base.tasks:
        raise SystemExit(f"the policy does not know {args.task}")
    table = Dataset(args.demos).episode_table()
    ok = table[(table["academy/task"] == args.task) & (table["academy/outcome"] == "success")]
    sources = [int(e) for e in ok["episode_index"][: args.sources]]
    if not sources:
        raise SystemExit(f"{args.demos} has no successful {args.task} episode to vary")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    mixed = out / "demos-and-dreams"
    shutil.copytree(args.demos, mixed)
    t0 = time.time()
    per, dreams, physics = args.variations // len(sources), [], {"kept": [0, 0], "rejected": [0, 0]}
    for k, ep in enumerate(sources):
        cfg = VariationConfig(variations=per, context_ranges=DREAM_CONTEXT, judge=args.judge,
                              settle_steps=args.settle, seed=args.seed + k)
        s = dream(args.model, args.policy, args.demos, ep, mixed, cfg)
        dreams.append({key: s[key] for key in ("source", "variations", "model_success", "kept", "written", "seconds")})
        print(f"{s['source']}: {s['model_success']} of {per} judged a success, {s['kept']} kept, {s['seconds']} s",
              flush=True)
        if args.check:
            for label, row in check_in_physics(s, args.check, seed=args.seed + k).items():
                physics[label][0] += row["succeeded"]
                physics[label][1] += row["replayed"]
    dream_seconds = time.time() - t0
    cfg = TrainConfig(max_minutes=args.minutes, seed=args.seed, hidden=base.cfg.hidden, chunk=base.cfg.chunk,
                      source_weights={"dream": args.dream_weight})
    info = train(mixed, out / "policy", cfg, tasks=[args.task])
    before = _both(args.policy, [args.task], args.episodes)
    after = _both(str(out / "policy"), [args.task], args.episodes)
    gain = gains(before, after, [args.task], args.episodes)
    points = gain["variations"][args.task]["points"]
    kept = sum(d["kept"] for d in dreams)
    result = {
        "command": "python benchmarks/dream_learn.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "task": args.task, "real_episodes_added": 0, "dream_context": {k: list(v) for k, v in DREAM_CONTEXT.items()},
        "dreams": {"sources": dreams, "variations": per * len(sources), "kept": kept, "seconds": round(dream_seconds, 1),
                   "physics_replay": {label: {"succeeded": a, "replayed": n, "share": round(a / n, 3) if n else None}
                                      for label, (a, n) in physics.items()}},
        "learn": {"episodes": info["episodes"], "frames": info["frames"], "steps": info["steps"],
                  "seconds": info["seconds"], "dream_weight": args.dream_weight},
        "before": before, "after": after, "gain": gain,
        "gain_points_on_variations": points, "goal_points": GOAL_POINTS, "goal_met": points >= GOAL_POINTS,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dream_learn.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("dreams", "learn", "gain", "goal_met")}, indent=1))


if __name__ == "__main__":
    main()
