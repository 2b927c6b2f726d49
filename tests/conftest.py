import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """A small real policy: two handover demonstrations, 60 training steps (exam and release tests)."""
    from academy.data.collect import collect
    from academy.learn.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_policy")
    collect("handover", 2, root / "ds", workers=1)
    train(root / "ds", root / "policy", TrainConfig(max_steps=60, max_minutes=1, batch_size=32, hidden=32, layers=1, threads=1))
    return root / "policy"
