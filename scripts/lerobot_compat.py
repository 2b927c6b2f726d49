"""Load an Academy dataset with LeRobot's own LeRobotDataset (run in a separate venv with lerobot).

    python scripts/lerobot_compat.py DATASET_DIR

LeRobot cannot be one of Academy's dependencies (its torch pin pulls a CUDA build), so this
check runs in a side environment: see docs/data.md for how to make one. torchvision is replaced
by an empty module when its compiled ops do not match the installed torch (LeRobot's dataset code
imports it but reads parquet and json without it); video frames are not decoded here.
"""

from __future__ import annotations

import importlib
import json
import sys
import types


def _torchvision_or_stub() -> str:
    try:
        importlib.import_module("torchvision")
        return "torchvision"
    except Exception:  # a torchvision built for another torch fails at import
        for name in list(sys.modules):
            if name.startswith("torchvision"):
                del sys.modules[name]
        import importlib.machinery

        tv = types.ModuleType("torchvision")
        tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.v2 = types.ModuleType("torchvision.transforms.v2")
        tv.io = types.ModuleType("torchvision.io")
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                            "torchvision.transforms.v2": tv.transforms.v2, "torchvision.io": tv.io})
        return "stub"


def main(root: str) -> None:
    tv = _torchvision_or_stub()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    meta = LeRobotDatasetMetadata("academy/local", root=root)
    report = {"torchvision": tv, "codebase_version": meta.info["codebase_version"],
              "total_episodes": meta.total_episodes, "total_frames": meta.total_frames,
              "tasks": list(meta.tasks.index), "video_keys": meta.video_keys,
              "stats_features": sorted(meta.stats)}
    ds = LeRobotDataset("academy/local", root=root, video_backend="pyav")
    report["len"] = len(ds)
    report["num_episodes"] = ds.num_episodes
    # frames through LeRobot's own __getitem__ where no video must be decoded, else its hf_dataset
    item = ds[len(ds) - 1] if not meta.video_keys else ds.hf_dataset[len(ds) - 1]
    report["last_item"] = {k: (list(v.shape) if hasattr(v, "shape") else v) for k, v in item.items()}
    import torch

    report["sums"] = {
        k: float(torch.stack(list(ds.hf_dataset[k])).double().sum())
        for k, ft in meta.features.items() if ft["dtype"] not in ("video", "image", "string")
    }
    ep = meta.episodes[meta.total_episodes - 1]
    report["last_episode"] = {k: ep[k] for k in ("episode_index", "length", "dataset_from_index", "dataset_to_index")}
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
