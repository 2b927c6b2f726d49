"""The command stage: the planner's accuracy and latency, and plans carried out by the policy.

    python benchmarks/command_bench.py
    python benchmarks/command_bench.py --policy academy-data/policies/cmd-cond \
        --baseline-policy academy-data/policies/cmd-plain --episodes 20

Writes benchmarks/results/command.json.
- Planner (held-out set tests/data/instructions-heldout.jsonl): plan accuracy of the offline
  planner against a baseline in the same run, the same embedding model with no parser (the whole
  instruction's nearest exemplar as a one-step plan with default arguments); latency after load,
  one instruction at a time on one CPU thread, p50/p99, against the bare sentence embedding of the
  same text (the floor the planner stands on), as a ratio.
- Execution (with --policy): every distinct plan of the held-out set whose skills the policy knows,
  carried out ``--episodes`` times on fixed seeds, in the nominal simulation and on the held-out
  reality robots (serials in turn); plan success (every step) and step success per skill. With
  --baseline-policy, the same for a policy trained without instructions, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "command.json"
HELDOUT = Path(__file__).parents[1] / "tests" / "data" / "instructions-heldout.jsonl"


def planner_bench(planner_dir: str | None) -> dict:
    import torch

    torch.set_num_threads(1)
    from academy.command.exam import examine, judge, read_set
    from academy.command.planner import NONE, PICK, load_planner
    from academy.command.skills import DEFAULT_ARGS, Plan, Refusal, Step

    t0 = time.perf_counter()
    planner = load_planner(planner_dir)
    load_s = time.perf_counter() - t0
    report = examine(planner, HELDOUT)
    rows = read_set(HELDOUT)

    def nearest_only(text: str) -> Plan:  # the baseline: no parser, no sequencing, no arguments
        if not text.strip():
            return Plan(text, [], Refusal("unknown", "empty"))
        row = planner.embed([text])[0] @ planner.bank.T
        best = int(np.argmax(row))
        label = planner.labels[best] if row[best] >= planner.threshold else NONE
        if label in (NONE, PICK):
            return Plan(text, [], Refusal("unknown", "nearest exemplar is outside the library"))
        return Plan(text, [Step(label, dict(DEFAULT_ARGS[label]))])

    base_right = [judge(r, nearest_only(r["text"]).to_dict()) for r in rows]
    embed_ms = []
    for r in rows:
        t = time.perf_counter()
        planner.embed([r["text"]])
        embed_ms.append((time.perf_counter() - t) * 1000)
    p99_embed = float(np.percentile(embed_ms, 99))
    return {"set": str(HELDOUT.relative_to(HELDOUT.parents[2])), "n": report["n"], "planner": report["planner"],
            "load_seconds": round(load_s, 2),
            "accuracy": report["accuracy"], "plans_right": f"{report['plans_right']}/{report['plans']}",
            "refusals_right": f"{report['refusals_right']}/{report['refusals']}",
            "false_refusals": report["false_refusals"],
            "baseline_nearest_exemplar_accuracy": float(np.mean(base_right)),
            "accuracy_ratio_vs_baseline": report["accuracy"] / max(float(np.mean(base_right)), 1e-9),
            "latency_ms": report["latency_ms"],
            "bare_embedding_ms": {"p50": float(np.percentile(embed_ms, 50)), "p99": p99_embed},
            "p99_ratio_vs_bare_embedding": report["latency_ms"]["p99"] / p99_embed,
            "goals": report["goals"], "passed": report["passed"],
            "wrong": [{"text": w["text"], "expected": w["expected"], "got": w["got"]} for w in report["wrong"]]}


def _job(args: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    from academy.command.run import carry_out
    from academy.command.skills import Plan, Step

    policy, text, steps, serial, seed = args
    plan = Plan(text, [Step(s["skill"], s["args"]) for s in steps])
    return carry_out(plan, policy, None, serial, seed)


def execution_bench(policy: str, episodes: int, workers: int) -> dict:
    from academy.command.exam import read_set
    from academy.learn.checkpoint import trained_tasks
    from academy.sim.reality import HELD_OUT_SERIALS

    knows = set(trained_tasks(policy))
    plans: dict[str, tuple[str, list]] = {}
    for r in read_set(HELDOUT):
        if "plan" in r and {s["skill"] for s in r["plan"]} <= knows:
            plans.setdefault(json.dumps(r["plan"], sort_keys=True), (r["text"], r["plan"]))
    jobs = []
    for k, (text, steps) in enumerate(plans.values()):
        for e in range(episodes):
            seed = 900000 + 1000 * k + 10 * e
            jobs.append((policy, text, steps, None, seed))
            jobs.append((policy, text, steps, HELD_OUT_SERIALS[e % len(HELD_OUT_SERIALS)], seed))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        outs = list(pool.map(_job, jobs, chunksize=1))
    result: dict = {"policy": policy, "plans": len(plans), "episodes_per_plan": episodes}
    for where, pick in (("simulation", lambda o: o["robot"] == "simulation"),
                        ("reality_robots", lambda o: o["robot"] != "simulation")):
        sel = [o for o in outs if pick(o)]
        per_skill: dict[str, list[bool]] = {}
        for o in sel:
            for s in o["steps"]:
                per_skill.setdefault(s["skill"], []).append(s["success"])
        per_plan: dict[str, list[bool]] = {}
        for o in sel:
            per_plan.setdefault(o["text"], []).append(o["success"])
        result[where] = {"plan_success": float(np.mean([o["success"] for o in sel])), "runs": len(sel),
                         "step_success": {k: {"rate": float(np.mean(v)), "n": len(v)} for k, v in per_skill.items()},
                         "per_plan": {k: float(np.mean(v)) for k, v in per_plan.items()}}
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--planner", default=None, help="planner folder (default: the built-in one)")
    ap.add_argument("--policy", default=None, help="also carry out the held-out plans with this policy")
    ap.add_argument("--baseline-policy", default=None, help="the same without instructions, for the ratio")
    ap.add_argument("--episodes", type=int, default=10, help="runs per plan, in simulation and on reality robots each")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = {"planner": planner_bench(args.planner)}
    p = out["planner"]
    print(f"planner: accuracy {p['accuracy']:.1%} (baseline nearest exemplar {p['baseline_nearest_exemplar_accuracy']:.1%}); "
          f"latency p50 {p['latency_ms']['p50']:.1f} ms, p99 {p['latency_ms']['p99']:.1f} ms "
          f"({p['p99_ratio_vs_bare_embedding']:.2f}x the bare embedding's p99 {p['bare_embedding_ms']['p99']:.1f} ms)")
    if args.policy:
        t0 = time.time()
        out["execution"] = execution_bench(args.policy, args.episodes, args.workers)
        if args.baseline_policy:
            out["execution_baseline"] = execution_bench(args.baseline_policy, args.episodes, args.workers)
            for where in ("simulation", "reality_robots"):
                a, b = out["execution"][where]["plan_success"], out["execution_baseline"][where]["plan_success"]
                out[f"plan_success_ratio_{where}"] = a / b if b else None
        out["execution_seconds"] = round(time.time() - t0, 1)
        for key in ("execution", "execution_baseline"):
            if key in out:
                e = out[key]
                print(f"{key} ({e['policy']}): plan success sim {e['simulation']['plan_success']:.1%}, reality robots "
                      f"{e['reality_robots']['plan_success']:.1%} over {e['plans']} plans x {e['episodes_per_plan']}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
