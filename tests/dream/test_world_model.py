"""The world model: fit on real stored episodes, save and load, step, k-step error, bad input."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from academy.cli import app
from academy.dream.fit import Episodes, FitConfig, fit, kstep_error
from academy.dream.model import CONTEXT, DIMS, X_DIM, WorldModel, WorldModelConfig


@pytest.fixture(scope="module")
def fitted(tiny_policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("wm") / "model"
    info = fit([tiny_policy.parent / "ds"], out, FitConfig(max_minutes=3, max_steps=200, horizon=2, val_fraction=0.5, threads=1),
               WorldModelConfig(members=3, hidden=64, layers=2))
    return out, info


def test_fit_learns_and_reports_the_kstep_table(fitted):
    out, info = fitted
    assert info["steps"] == 200 and info["episodes"] == 1 and info["val_episodes"] == 1
    assert info["final_loss"] < 0.5 * info["first_loss"]
    assert set(info["kstep"]) == {"1", "10", "50"}
    for k, row in info["kstep"].items():
        assert set(row) == {"joint_pos_rad", "joint_vel_rad_s", "object_pos_mm", "object_rot_deg", "no_change_baseline"}
        assert all(np.isfinite(v) and v >= 0 for n, v in row.items() if n != "no_change_baseline")
    # drift grows with the horizon, for the model and for standing still
    assert info["kstep"]["50"]["joint_pos_rad"] > info["kstep"]["1"]["joint_pos_rad"]
    assert json.loads((out / "fit.json").read_text())["kstep"] == info["kstep"]


def test_saved_model_steps_a_batch_with_uncertainty(fitted, tiny_policy):
    out, info = fitted
    model = WorldModel.load(out)
    eps = Episodes.load([tiny_policy.parent / "ds"])
    x, goal, action = (torch.from_numpy(a[:4]) for a in (eps.x[0], eps.goal[0], eps.action[0]))
    ctx = torch.ones(4, len(CONTEXT))
    mean = model.step(x, goal, action, ctx)
    assert mean["x"].shape == (4, X_DIM) and mean["uncertainty"].shape == (4,)
    assert torch.all(mean["uncertainty"] > 0)  # three members never agree exactly
    quats = mean["x"][:, DIMS["observation.state"]:].reshape(4, -1, 7)[..., 3:]
    assert torch.allclose(quats.norm(dim=-1), torch.ones(quats.shape[:2]), atol=1e-5)
    sampled = model.step(x, goal, action, ctx, member=torch.tensor([0, 1, 2, 0]))
    assert not torch.allclose(sampled["x"], mean["x"])
    # the same held-out episode gives the same table from the loaded model
    _, held_out = eps.split(0.5, 0)
    assert kstep_error(model, eps, held_out)["1"] == info["kstep"]["1"]


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a world model"):
        WorldModel.load(tmp_path)
    r = CliRunner().invoke(app, ["dream", "fit", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")])
    assert r.exit_code == 1 and "nowhere" in r.output
