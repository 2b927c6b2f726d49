"""Dataset write/read speed and policy inference latency, each against a baseline in the same run.

    python benchmarks/data_and_inference.py --policy academy-data/policies/bc

Writes benchmarks/results/data_and_inference.json.
- Dataset: frames/s writing and reading workcell-shaped episodes (no video) through
  academy.data, against pyarrow writing and reading the same arrays as one bare parquet file.
- Inference, batch 1, CPU, one thread: p50/p99 of the raw network forward, of ``Policy.act``
  (input checks and temporal ensembling included) and of onnxruntime on model.onnx.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from academy.data import Dataset, EpisodeMeta
from academy.data.collect import FPS, workcell_features

OUT = Path(__file__).parent / "results" / "data_and_inference.json"


def dataset_speed(episodes: int, length: int) -> dict:
    feats = workcell_features()
    rng = np.random.default_rng(0)
    eps = [{k: rng.normal(size=(length, *f["shape"])).astype(f["dtype"]) if f["dtype"] != "bool"
            else np.zeros((length, 1), bool) for k, f in feats.items()} for _ in range(episodes)]
    frames = episodes * length
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        ds = Dataset.create(tmp / "ds", FPS, feats)
        with ds.writer(flush_every=25) as w:
            for e in eps:
                w.add_episode(e, EpisodeMeta(task="sort_cells"), "sort")
        write = frames / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = Dataset(tmp / "ds").read()
        read = frames / (time.perf_counter() - t0)
        assert len(back["action"]) == frames
        # baseline: the same arrays as one parquet table, straight through pyarrow
        t0 = time.perf_counter()
        cols = {k: np.concatenate([e[k] for e in eps]) for k in feats}
        table = pa.table({k: pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]) for k, v in cols.items()})
        pq.write_table(table, tmp / "raw.parquet")
        raw_write = frames / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        t = pq.read_table(tmp / "raw.parquet")
        _ = {k: t.column(k).combine_chunks().flatten().to_numpy(zero_copy_only=False) for k in feats}
        raw_read = frames / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp)
    return {"frames": frames, "write_fps": round(write), "read_fps": round(read),
            "baseline_pyarrow_write_fps": round(raw_write), "baseline_pyarrow_read_fps": round(raw_read),
            "write_ratio": round(write / raw_write, 3), "read_ratio": round(read / raw_read, 3)}


def _latency(fn, n: int) -> dict:
    for _ in range(50):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def inference(policy_dir: str, n: int) -> dict:
    from academy.learn.checkpoint import INPUT_NAMES, example_inputs
    from academy.learn.policy import Policy

    torch.set_num_threads(1)
    policy = Policy.load(policy_dir)
    inputs = example_inputs(policy.cfg, batch=1)
    obs = {k: np.zeros((1, d), np.float32) for k, d in policy.cfg.obs_dims.items()} | {"task": np.array([0])}
    with torch.inference_mode():
        out = {"network_forward": _latency(lambda: policy.model(*inputs), n)}
    out["policy_act"] = _latency(lambda: policy.act(obs), n)
    try:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(Path(policy_dir) / "model.onnx"), so)
        feeds = dict(zip(INPUT_NAMES, [t.numpy() for t in inputs]))
        out["onnxruntime"] = _latency(lambda: sess.run(None, feeds), n)
    except ImportError:
        out["onnxruntime"] = "onnxruntime not installed"
    out["policy_act_over_forward_p50"] = round(out["policy_act"]["p50_ms"] / out["network_forward"]["p50_ms"], 2)
    out["goal_p99_ms"] = 1.0
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", default="academy-data/policies/bc")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--calls", type=int, default=5000)
    args = p.parse_args()
    result = {"dataset": dataset_speed(args.episodes, args.length)}
    print("dataset", result["dataset"])
    if Path(args.policy, "config.json").exists():
        result["inference"] = inference(args.policy, args.calls)
        print("inference", result["inference"])
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
