"""A release home with four real releases and an update server that can be told to misbehave.

Releases (all from one small real policy: two handover demos, 300 training steps):
1. the policy; 2. the policy with a practice residual (a delta of 1); 3. a policy whose config
does not match its weights (it fails to load at boot); 4. the policy for the ah1-cm5 profile only.

The exam reports given to the gate are the policy's real exam with its safety counts cleared
(a 300-step policy is not safe over a whole episode; the exam and gate tests cover that).
"""

import json
import shutil

import pytest

from academy.exam.exam import ExamConfig, run_exam
from academy.exam.safety import KINDS
from academy.learn.policy import Policy
from academy.learn.train import TrainConfig, train
from academy.practice.residual import ResidualActorCritic, default_scale, feature_dim, save_residual
from academy.release.publish import ReleaseHome

PROFILE = "ah1-sim"


@pytest.fixture(scope="session")
def deploy_home(tiny_policy, tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    pol = root / "p1"
    train(tiny_policy.parent / "ds", pol, TrainConfig(max_steps=300, max_minutes=2, batch_size=32, hidden=32, layers=1, threads=1))
    report = run_exam(str(pol), ["handover"], ExamConfig(episodes=1, reality_episodes=0, latency_calls=50))
    for skill in report["skills"].values():
        skill["safety"] = {k: (0 if k in KINDS else v) for k, v in skill["safety"].items()} | {"worst": {}}
    report["inference"]["fits"] = ["ah1-cm3", "ah1-cm5", "ah1-sim"]
    home = ReleaseHome(root / "home")
    home.init()
    home.publish(str(pol), report)
    p2 = root / "p2"
    shutil.copytree(pol, p2)
    cfg = Policy.load(pol).cfg
    save_residual(p2, ResidualActorCritic(feature_dim(len(cfg.tasks), cfg.obs_dims), len(cfg.tasks), default_scale("hands"), hidden=16))
    home.publish(str(p2), report)
    p3 = root / "p3"
    shutil.copytree(pol, p3)
    config = json.loads((p3 / "config.json").read_text())
    (p3 / "config.json").write_text(json.dumps({**config, "hidden": 48}))
    home.publish(str(p3), report)
    cm5 = json.loads(json.dumps(report))
    cm5["inference"]["fits"] = ["ah1-cm5"]
    home.publish(str(pol), cm5)
    return home
