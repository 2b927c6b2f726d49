"""A release home with two real handover releases, copied fresh for each test.

Release 1 is ``handover-enc`` and release 2 ``handover-plain`` (tests/assets/policies), each
examined in simulation (one episode) under limits that stop only past a joint's end, as the
deploy end-to-end test does: both policies work the wrist roll 20 mrad from its stop.
"""

import shutil

import pytest

from academy.exam.exam import ExamConfig, run_exam
from academy.exam.safety import SafetyLimits
from academy.release.publish import ReleaseHome
from fleethelp import PROFILE


@pytest.fixture(scope="session")
def fleet_home_template(shipped_policies, tmp_path_factory):
    home = ReleaseHome(tmp_path_factory.mktemp("fleet") / "home")
    home.init()
    exam = ExamConfig(episodes=1, reality_episodes=0, latency_calls=50, limits=SafetyLimits(joint_limit_margin=0.0))
    for name in ("handover-enc", "handover-plain"):
        policy = str(shipped_policies[name])
        report = run_exam(policy, ["handover"], exam)
        report["inference"]["fits"] = [PROFILE]  # the profile's budget is the whole 50 ms step
        assert home.publish(policy, report).decision.passed
    return home.home


@pytest.fixture
def fleet_home(fleet_home_template, tmp_path):
    dest = tmp_path / "home"
    shutil.copytree(fleet_home_template, dest)
    return ReleaseHome(dest)
