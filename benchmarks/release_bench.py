"""Exam time at the default size, and the delta size of a practice fine-tune against its parent.

    python benchmarks/release_bench.py --parent <learned policy> --child <practiced policy>

1. Examines ``--parent`` on every skill at the default exam size (24 nominal scenes and 16
   reality-robot scenes per skill, latency measured) and times it: goal at most 3 minutes on
   2 cores. The same exam on the scripted experts (no network) is the baseline, and the ratio
   of the two times is reported.
2. Examines ``--child`` the same way, publishes both into a fresh release home (the gate may
   refuse: its reasons are reported, and the bundles are built all the same to measure), and
   reports the child's delta against the parent: bytes a robot holding the parent must fetch,
   against the full bundle. Goal at most 50%.

Writes benchmarks/results/release_bench.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from academy.exam.exam import ExamConfig, run_exam
from academy.exam.gate import gate
from academy.release.bundle import build_bundle, delta

OUT = Path(__file__).parent / "results" / "release_bench.json"


def timed_exam(policy: str, cfg: ExamConfig) -> dict:
    t0 = time.time()
    report = run_exam(policy, None if policy != "expert" else ["handover", "place_part", "sort_cells"], cfg)
    report["wall_seconds"] = round(time.time() - t0, 1)
    return report


def summary(report: dict) -> dict:
    out = {k: report[k] for k in ("policy", "exam_seconds", "seconds", "wall_seconds") if k in report}
    out["skills"] = {s: {"nominal": f"{v['nominal']['successes']}/{v['nominal']['episodes']}",
                         "reality": f"{v['reality']['successes']}/{v['reality']['episodes']}",
                         "episode_seconds": v["episode_seconds"],
                         "safety": {k: n for k, n in v["safety"].items() if k not in ("worst", "steps") and n}}
                     for s, v in report["skills"].items()}
    if "inference" in report:
        out["inference"] = report["inference"]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--parent", required=True, help="learned policy checkpoint")
    p.add_argument("--child", required=True, help="a practice fine-tune of --parent (its policy/ folder)")
    p.add_argument("--episodes", type=int, default=24)
    p.add_argument("--reality-episodes", type=int, default=16)
    args = p.parse_args()
    cfg = ExamConfig(episodes=args.episodes, reality_episodes=args.reality_episodes)
    expert = timed_exam("expert", cfg)
    parent = timed_exam(args.parent, cfg)
    child = timed_exam(args.child, cfg)
    result = {
        "config": cfg.to_dict(),
        "expert": summary(expert), "parent": summary(parent), "child": summary(child),
        "exam_seconds_ratio_policy_over_expert": round(parent["wall_seconds"] / expert["wall_seconds"], 3),
        "goal_exam_seconds": 180,
    }
    result["gate_parent_first_release"] = gate(parent, None).to_dict()
    result["gate_child_against_parent"] = gate(child, parent, current_name="the parent").to_dict()
    with tempfile.TemporaryDirectory() as tmp:
        m1 = build_bundle(args.parent, parent, 1, None, Path(tmp) / "1")
        m2 = build_bundle(args.child, child, 2, 1, Path(tmp) / "2")
        result["delta"] = delta(m2, m1)
        result["delta_files"] = {n: f["length"] for n, f in m2["files"].items()
                                 if n not in m1["files"] or m1["files"][n]["sha256"] != f["sha256"]}
    result["goal_delta_ratio"] = 0.5
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("exam_seconds_ratio_policy_over_expert", "delta")}, indent=1))
    for who in ("expert", "parent", "child"):
        print(who, result[who].get("wall_seconds"), json.dumps(result[who]["skills"]))
    print("gate child vs parent:", result["gate_child_against_parent"]["passed"], result["gate_child_against_parent"]["reasons"][:4])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
