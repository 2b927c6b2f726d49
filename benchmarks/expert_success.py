"""Expert success per task: nominal simulation and the held-out reality robots.

    python benchmarks/expert_success.py --episodes 100

Writes benchmarks/results/expert_success.json. Seeds are fixed: nominal uses seeds 0..N-1;
reality spreads N episodes over the eight held-out serials (seeds 10000 + k).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from academy.evaluate import evaluate
from academy.sim.tasks import REGISTRY

OUT = Path(__file__).parent / "results" / "expert_success.json"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    t0 = time.time()
    tasks = evaluate("expert", list(REGISTRY), args.episodes, first_seed=0, workers=args.workers)
    result = {"episodes_per_condition": args.episodes, "seconds": round(time.time() - t0, 1), "tasks": tasks}
    for task, r in tasks.items():
        print(f"{task:12s} nominal {r['nominal_success']:.0%} of {r['nominal_episodes']}"
              f"   reality {r['reality_success']:.0%} of {r['reality_episodes']}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
