"""LeRobot's own LeRobotDataset loads what Academy writes.

LeRobot cannot be installed next to Academy (its torch pin pulls CUDA), so this runs the check
script in a side environment named by ACADEMY_LEROBOT_PYTHON (see docs/data.md); skipped without.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dshelp import write_dataset

PYTHON = os.environ.get("ACADEMY_LEROBOT_PYTHON")
SCRIPT = Path(__file__).parents[2] / "scripts" / "lerobot_compat.py"


@pytest.mark.skipif(not PYTHON, reason="set ACADEMY_LEROBOT_PYTHON to a python with lerobot installed")
@pytest.mark.parametrize("video", [False, True])
def test_lerobot_loads_academy_dataset(tmp_path, video):
    ds, written = write_dataset(tmp_path / "ds", n=5, video=video)
    out = subprocess.run([PYTHON, str(SCRIPT), str(ds.root)], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["codebase_version"] == "v3.0"
    assert report["len"] == ds.num_frames and report["num_episodes"] == ds.num_episodes
    assert report["tasks"] == ds.tasks
    assert report["last_episode"]["dataset_to_index"] == ds.num_frames
    for key in ("observation.state", "action", "next.reward"):
        ours = float(np.concatenate([w[0][key] for w in written]).astype(np.float64).sum())
        assert report["sums"][key] == pytest.approx(ours, rel=1e-5)
    assert report["last_item"]["observation.state"] == [4]
