"""Expert success per task: nominal simulation and the held-out reality robots.

    python benchmarks/expert_success.py --episodes 100

Writes benchmarks/results/expert_success.json. Seeds are fixed: nominal uses seeds 0..N-1;
reality spreads N episodes over the eight held-out serials (seeds 10000 + k).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from academy.sim.reality import HELD_OUT_SERIALS
from academy.sim.rollout_expert import run_expert
from academy.sim.tasks import REGISTRY

OUT = Path(__file__).parent / "results" / "expert_success.json"


def _job(args: tuple[str, str | None, list[int]]) -> tuple[str, str | None, list[bool]]:
    task, serial, seeds = args
    return task, serial, [r.success for r in run_expert(task, seeds, serial=serial)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    n = args.episodes
    jobs = []
    for task in REGISTRY:
        jobs += [(task, None, list(range(i, n, 4))) for i in range(4)]
        per = -(-n // len(HELD_OUT_SERIALS))
        jobs += [(task, s, [10000 + k for k in range(per)]) for s in HELD_OUT_SERIALS]
    t0 = time.time()
    tally: dict = {t: {"nominal": [], "reality": {}} for t in REGISTRY}
    with ProcessPoolExecutor(args.workers) as pool:
        for task, serial, wins in pool.map(_job, jobs):
            if serial is None:
                tally[task]["nominal"] += wins
            else:
                tally[task]["reality"][serial] = wins
    result = {"episodes_per_condition": n, "seconds": round(time.time() - t0, 1), "tasks": {}}
    for task, t in tally.items():
        real = [w for ws in t["reality"].values() for w in ws]
        result["tasks"][task] = {
            "nominal_success": sum(t["nominal"]) / len(t["nominal"]),
            "nominal_episodes": len(t["nominal"]),
            "reality_success": sum(real) / len(real),
            "reality_episodes": len(real),
            "reality_by_serial": {s: sum(w) / len(w) for s, w in t["reality"].items()},
        }
        print(f"{task:12s} nominal {result['tasks'][task]['nominal_success']:.0%} of {len(t['nominal'])}"
              f"   reality {result['tasks'][task]['reality_success']:.0%} of {len(real)}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
