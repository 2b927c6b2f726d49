"""Practice: success before and after, on held-out seeds and held-out reality robots; throughput.

    python benchmarks/practice_bench.py --policy academy-data/policies/bc --minutes 20
    python benchmarks/practice_bench.py --policy P --curriculum-compare --minutes 20   # sort_cells, 10 cells
    python benchmarks/practice_bench.py --policy P --robot AH1-1234 --minutes 10      # real fine-tuning mode
    python benchmarks/practice_bench.py --policy P --randomization 2 --tag _r2        # practise for wider ranges

Default mode: one practice run on every task within the budget, then ``evaluate`` (the same
code as ``academy eval``: seeds 100000.., and the eight held-out reality robots) of the base
policy and of the practiced one, over ``--episodes`` each. The baseline is the base policy in
the same run: the gain is in points. Also written: env steps per second while collecting, the
share of wall-clock in physics, policy inference, learning and evaluation, and the wall-clock.

``--curriculum-compare``: sort_cells with 10 cells, practised with the curriculum and, with
the same budget, straight on 10 cells; nominal success of both, and of the base policy. The
cells are the question: both practise for the nominal robot unless ``--randomization`` says
otherwise (the curriculum's randomization ladder then has one rung).

``--robot SERIAL``: fine-tuning on one (not held-out) reality robot; success on that robot
before and after, over ``--episodes`` seeds the practice never used.

Writes benchmarks/results/practice_<mode>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from academy.evaluate import evaluate
from academy.learn.policy import Policy
from academy.practice.run import PracticeConfig, evaluate_scenes, practice

RESULTS = Path(__file__).parent / "results"


def _run(args, out: Path, **kw) -> dict:
    cfg = PracticeConfig(policy=args.policy, out=str(out), minutes=args.minutes, backend=args.backend,
                         workers=args.workers, seed=args.seed, **kw)
    t0 = time.time()
    summary = practice(cfg, on_update=lambda r: print(
        f"update {r['update']:4d} steps {r['env_steps']:7d} {r['seconds']:6.0f}s eval {r.get('eval', '')} {r['changes']}",
        flush=True))
    keep = ("updates", "env_steps", "wall_seconds", "env_steps_per_second", "time_share", "best", "before", "curriculum")
    return {"seconds": round(time.time() - t0, 1), **{k: summary[k] for k in keep}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", required=True)
    p.add_argument("--out", default="academy-data/practice/bench")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--backend", default="local")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curriculum-compare", action="store_true")
    p.add_argument("--robot")
    p.add_argument("--task", action="append", help="tasks (default: all the policy knows)")
    p.add_argument("--randomization", type=float, help="the randomization practised for, every task (default 1)")
    p.add_argument("--tag", default="", help="suffix of the result file's name")
    args = p.parse_args()
    out = Path(args.out)
    result: dict = {"policy": args.policy, "minutes": args.minutes, "episodes": args.episodes, "backend": args.backend}
    if args.curriculum_compare:
        mode = "curriculum"
        target = {"sort_cells": {"n_cells": 10, "randomization": args.randomization or 0.0}}
        plan = {"sort_cells": ({"n_cells": 10}, None)}
        base = evaluate_scenes(Policy.load(args.policy), ["sort_cells"], args.episodes, plan, first_seed=100000)
        result["base"] = base
        result["base_one_cell"] = evaluate_scenes(Policy.load(args.policy), ["sort_cells"], args.episodes,
                                                  {"sort_cells": ({"n_cells": 1}, None)}, first_seed=100000)
        print("base", base, "at one cell", result["base_one_cell"], flush=True)
        for name, on in (("curriculum", True), ("straight", False)):
            run = _run(args, out / f"sort10-{name}", tasks=["sort_cells"], target=target, curriculum=on)
            policy = Policy.load(out / f"sort10-{name}" / "policy")
            run["nominal_success"] = evaluate_scenes(policy, ["sort_cells"], args.episodes, plan, first_seed=100000)
            result[name] = run
            print(name, run["nominal_success"], flush=True)
    elif args.robot:
        mode = f"robot_{args.robot}"
        tasks = args.task or list(Policy.load(args.policy).tasks)
        plan = {t: ({}, None) for t in tasks}
        result["robot"] = args.robot
        result["before"] = evaluate_scenes(Policy.load(args.policy), tasks, args.episodes, plan, first_seed=100000, robot=args.robot)
        run = _run(args, out / f"robot-{args.robot}", tasks=tasks, robot=args.robot)
        result["practice"] = run
        result["after"] = evaluate_scenes(Policy.load(out / f"robot-{args.robot}" / "policy"), tasks, args.episodes, plan,
                                          first_seed=100000, robot=args.robot)
        result["gain_points"] = {t: round(100 * (result["after"][t] - result["before"][t]), 1) for t in tasks}
    else:
        mode = "default"
        tasks = args.task or list(Policy.load(args.policy).tasks)
        target = {t: {"randomization": args.randomization} for t in tasks} if args.randomization is not None else {}
        run = _run(args, out / "default", tasks=tasks, target=target)
        result["practice"] = run
        result["before"] = evaluate(args.policy, tasks, args.episodes)
        result["after"] = evaluate(str(out / "default" / "policy"), tasks, args.episodes)
        result["gain_points"] = {
            t: {c: round(100 * (result["after"][t][f"{c}_success"] - result["before"][t][f"{c}_success"]), 1)
                for c in ("nominal", "reality")} for t in tasks}
    print(json.dumps({k: v for k, v in result.items() if k not in ("practice",)}, indent=1))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"practice_{mode}{args.tag}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
