"""The closed flywheel, small: two cycles of learn, dream, exam, release, deploy, a fleet shift,
ingest and corrections, with a real update server and two physics robots. The budgets are tiny,
so the policies are poor: the test checks that each cycle's fleet episodes, and the corrections
of its failures, are what the next cycle learns from, not that success rises (README measures
that with real budgets)."""

import json

import pytest
from typer.testing import CliRunner

from academy.cli import app
from academy.data import Dataset
from academy.flywheel.cycle import SHIFT_SEED, FlywheelConfig, rise, run_flywheel, wilson
from academy.report import sample_videos, write_report


def test_two_cycles_feed_the_fleets_episodes_and_corrections_into_the_next_policy(tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"), cycles=2, tasks=("handover",), demos=3, human_episodes=0,
                         learn_steps=40, practice_minutes=0.0, dream_variations=20, dream_fit_minutes=0.05,
                         dream_check=3, exam_episodes=2, exam_reality_episodes=2, robots=2, orders=2,
                         rollout_orders=1, min_episodes=1, warm_start=True)
    summary = run_flywheel(cfg, tmp_path / "run")
    one, two = summary["cycles"]
    assert json.loads((tmp_path / "run" / "flywheel.json").read_text())["cycles"][1]["cycle"] == 2
    assert (tmp_path / "run" / "flywheel.png").stat().st_size > 10_000

    # cycle 1: demos only; the first release goes to both robots, which work their shift on it
    assert one["data"]["successes_by_source"] == {"expert": 3}
    assert one["release"]["released"] == 1
    assert one["deploy"]["state"] == "done" and one["deploy"]["installed"] == {"AH1-0001": 1, "AH1-0002": 1}
    assert one["shift"]["episodes"] == 4 and one["fleet"]["all"][1] == 4
    assert one["fleet"]["releases"] == {"1": one["fleet"]["all"]}

    # the fleet dataset holds the shift (scene seeds of cycle 1) and the rollout's rounds of work
    fleet = Dataset(tmp_path / "run" / "releases" / "fleet" / "episodes").episodes
    shift = fleet[(fleet["academy/seed"] >= SHIFT_SEED + 10000) & (fleet["academy/seed"] < SHIFT_SEED + 10004)]
    assert sorted(shift["academy/seed"]) == list(range(SHIFT_SEED + 10000, SHIFT_SEED + 10004))
    assert int((shift["academy/outcome"] == "success").sum()) == one["fleet"]["all"][0]

    # every failure of cycle 1 was redone once, and cycle 2 learned from it and from the fleet's episodes
    assert one["corrections"]["redone"] == one["corrections"]["failures"] > 0
    fixes = Dataset(tmp_path / "run" / "releases" / "fleet" / "corrections").episodes
    assert fixes["academy/key"].is_unique and set(fixes["academy/source"]) == {"correction"}
    assert two["data"]["successes_by_source"]["expert"] == 3
    assert two["data"]["successes_by_source"].get("correction", 0) == one["corrections"]["corrections_succeeded"]
    train = Dataset(tmp_path / "run" / "cycles" / "2" / "train").episodes
    dreams = one["dream"]["tasks"]["handover"]["written"] if one["dream"]["used_for_training"] else 0
    assert int((train["academy/source"] == "fleet").sum()) == one["ingest"]["episodes"] == len(fleet) - \
        two["ingest"]["added"]
    assert len(train) == 3 + one["ingest"]["episodes"] + one["corrections"]["redone"] + dreams
    assert two["corrections"]["already_redone"] == one["corrections"]["redone"]  # none redone twice

    # cycle 2's candidate was judged against release 1: published and rolled out, or refused with reasons
    if two["release"]["released"]:
        assert two["release"]["released"] == 2 and two["deploy"]["state"] in ("done", "aborted")
    else:
        assert two["release"]["reasons"]
    assert two["shift"]["episodes"] == 4 and sum(n for _, n in two["fleet"]["releases"].values()) == 4
    assert one["learn"]["steps"] == two["learn"]["steps"] == 40  # a step budget, however busy the machine
    assert one["learn"]["from"] is None and two["learn"]["from"] == one["learn"]["policy"]  # warm start
    assert "rise" not in one and two["rise"] == rise(one["fleet"]["all"], two["fleet"]["all"])
    assert set(one["stage_seconds"]) >= {"learn", "dream", "exam_and_release", "deploy", "shift", "corrections"}

    # the run's report: one self-contained HTML file with its plots and a sample video inside
    (video,) = sample_videos(tmp_path / "run", ["handover"])
    assert video.parent == tmp_path / "run" / "videos" and video.stat().st_size > 1000
    page = write_report(tmp_path / "run").read_text()
    assert page.count("data:image/png;base64,") >= 6 and page.count("data:video/mp4;base64,") == 1
    for section in ("Fleet success per cycle", "Success per task and stage", "Simulation against reality robots",
                    "Learning curves", "World model: k-step", "Rollout timeline by cohort"):
        assert section in page
    assert f"{one['fleet']['all'][0]}/{one['fleet']['all'][1]}" in page  # the summary shows the run's own figures


def test_wilson_interval_brackets_the_rate():
    lo, hi = wilson(30, 100)
    assert lo < 0.30 < hi and round(lo, 3) == 0.219 and round(hi, 3) == 0.396
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("args, message", [(["--task", "juggle"], "unknown task"),
                                           (["--backend", "slurm"], "backend must be"),
                                           (["--learn-steps", "0"], "--learn-steps")])
def test_run_cycles_refuses_bad_settings_by_name(args, message, tmp_path):
    r = CliRunner().invoke(app, ["run", "--cycles", "1", "--workspace", str(tmp_path), *args])
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "runs").exists()


def test_a_first_release_refused_by_the_gate_stops_the_flywheel_with_the_reasons(tmp_path):
    strict = tmp_path / "limits.json"
    strict.write_text(json.dumps({"joint_limit_margin": 3.0}))  # every joint is always within 3 rad of a stop
    r = CliRunner().invoke(app, ["run", "--cycles", "2", "--workspace", str(tmp_path / "ws"), "--task", "handover",
                                 "--demos", "2", "--learn-minutes", "0.05", "--practice-minutes", "0",
                                 "--dream-variations", "0", "--human-episodes", "0", "--exam-episodes", "1",
                                 "--robots", "1", "--orders", "1", "--limits", str(strict)])
    assert r.exit_code == 1 and "flywheel stopped: the first release was refused" in r.output
    (run,) = (tmp_path / "ws" / "runs").iterdir()
    summary = json.loads((run / "flywheel.json").read_text())
    assert "safety limit 'joint_limit' crossed" in summary["stopped"]
    assert [c["release"]["released"] for c in summary["cycles"]] == [None]
    assert not (run / "robots").exists()  # no robot was provisioned for nothing


def test_rise_is_a_one_sided_two_proportion_test():
    up = rise([50, 100], [65, 100])
    assert up["points"] == 15.0 and 0.01 < up["p"] < 0.02  # z = 2.15
    assert rise([65, 100], [50, 100])["p"] > 0.98
    assert rise([0, 0], [3, 4]) == {"points": None, "p": None}
