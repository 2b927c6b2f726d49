"""Physical context in the store, and dreamed variations of one demonstration, checked in physics."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from academy.cli import app
from academy.data import Dataset
from academy.data.collect import CONTEXT_KEY, collect
from academy.dream.fit import Episodes, FitConfig, fit
from academy.dream.model import DIMS, WorldModel, WorldModelConfig
from academy.dream.variations import (BENCH_Z, Source, VariationConfig, _replay_job, check_in_physics, dream,
                                      perturb)
from academy.sim.env import WorkcellEnv
from academy.sim.randomize import RandomizationError

RANGES = {"friction": (0.6, 1.4), "object_mass": (0.7, 1.6), "object_size": (0.92, 1.08)}


@pytest.fixture(scope="module")
def context_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx")
    collect("handover", 3, root / "ds", workers=1, context_ranges=RANGES)
    return root / "ds"


@pytest.fixture(scope="module")
def small_model(context_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("wm") / "model"
    fit([context_ds], out, FitConfig(max_minutes=2, max_steps=60, horizon=2, val_fraction=0.34, threads=1),
        WorldModelConfig(members=2, hidden=64, layers=2))
    return out


def test_the_store_records_each_episodes_physics(context_ds):
    ds = Dataset(context_ds)
    assert ds.features[CONTEXT_KEY]["names"] == ["friction", "object_mass", "object_size"]
    eps = Episodes.load([context_ds])
    per_episode = np.array([c[0] for c in eps.context])
    for c, seed in zip(eps.context, ds.episode_table()["academy/seed"]):
        assert np.all(c == c[0])  # one context per episode
        env = WorkcellEnv("handover", context_ranges=RANGES)
        obs, _ = env.reset(int(seed))  # the same seed draws the same context
        np.testing.assert_allclose(obs["context"], c[0], rtol=1e-6)
    assert len(np.unique(per_episode[:, 0])) == 3
    for k, (lo, hi) in enumerate(RANGES.values()):
        assert np.all((per_episode[:, k] >= lo) & (per_episode[:, k] <= hi))
    with pytest.raises(ValueError, match="records the physical context"):
        collect("handover", 1, context_ds, workers=1)  # appending without context to a dataset with it


def test_the_model_learns_from_the_executed_commands(tmp_path):
    """With DART noise the label (``action``) is the expert's and the robot was sent something else:
    the store keeps both, and the world model reads what was executed."""
    from academy.data.collect import EXECUTED_KEY
    from academy.sim.rollout_expert import ARM

    collect("handover", 1, tmp_path / "dart", workers=1, action_noise=0.01, context_ranges=RANGES)
    data = Dataset(tmp_path / "dart").read(["action", EXECUTED_KEY])
    diff = data[EXECUTED_KEY] - data["action"]
    other = [j for j in range(diff.shape[1]) if j not in ARM]
    assert 0.007 < diff[:, ARM].std() < 0.013 and np.all(diff[:, other] == 0)
    eps = Episodes.load([tmp_path / "dart"])
    np.testing.assert_array_equal(eps.action[0], data[EXECUTED_KEY])


def test_env_applies_a_context_and_replaces_objects():
    env = WorkcellEnv("handover")
    env.reset(0)
    nominal_friction = env.model.geom_friction[:, 0].copy()
    part = env.world.object_index("part")
    nominal_mass = env.model.body_mass[env.world.object_body[part]]
    obs, _ = env.reset(0, context={"friction": 0.5, "object_mass": 2.0})
    np.testing.assert_allclose(env.model.geom_friction[:, 0], 0.5 * nominal_friction)
    assert env.model.body_mass[env.world.object_body[part]] == pytest.approx(2.0 * nominal_mass)
    assert obs["context"].tolist() == [0.5, 2.0, 1.0]
    objects = obs["objects"].copy()
    objects[part, :2] += [0.01, -0.01]
    moved, _ = env.reset(0, objects=objects)
    np.testing.assert_allclose(moved["objects"][part, :2], objects[part, :2], atol=2e-3)  # settled where it was put
    back, _ = env.reset(0)  # the next plain reset is nominal again
    assert back["context"].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(env.model.geom_friction[:, 0], nominal_friction)
    for bad, match in (({"gravity": 2.0}, "unknown context"), ([1.0, 1.0], "3 values"), ({"friction": 0.0}, "above 0")):
        with pytest.raises(RandomizationError, match=match):
            env.reset(0, context=bad)


def test_variations_perturb_the_bench_and_nothing_else(context_ds):
    source = Source.load(context_ds, 0)
    cfg = VariationConfig(position_jitter=0.02, yaw_jitter=0.2)
    x0, ctx = perturb(source, cfg, 200, np.random.default_rng(0))
    first = source.x[0, DIMS["observation.state"]:].reshape(-1, 7)
    obj = x0[:, DIMS["observation.state"]:].reshape(200, -1, 7)
    bench = first[:, 2] > BENCH_Z
    assert bench.sum() == 1  # handover: the part; the cells are parked on the floor
    shift = np.abs(obj[:, bench, :2] - first[bench, :2])
    assert shift.max() <= 0.02 + 1e-6 and shift.max() > 0.015
    np.testing.assert_array_equal(obj[:, ~bench], np.repeat(first[None, ~bench], 200, 0))
    np.testing.assert_array_equal(x0[:, :DIMS["observation.state"]], np.repeat(source.x[:1, :56], 200, 0))
    assert np.allclose(np.linalg.norm(obj[..., 3:], axis=-1), 1.0, atol=1e-5)
    for k, (lo, hi) in enumerate(RANGES.values()):
        assert lo <= ctx[:, k].min() and ctx[:, k].max() <= hi


def test_the_physics_check_replays_a_scene_faithfully(context_ds):
    """The replay the dreams are judged by: the source's own actions from its own scene and context
    succeed again, and the same actions fail once the part is moved 6 cm away."""
    source = Source.load(context_ds, 0)
    assert Dataset(context_ds).episode_table()["academy/outcome"].iloc[0] == "success"
    objects = source.x[0, 56:]
    far = objects.reshape(-1, 7).copy()
    far[-1, 1] += 0.06
    assert _replay_job(("handover", source.seed, [(objects, source.context[0], source.action),
                                                   (far.reshape(-1), source.context[0], source.action)])) == [True, False]


def _state(obs: dict) -> np.ndarray:
    return np.concatenate([obs["proprio"], obs["objects"].reshape(-1)])[None]


def _expert_handover(seed: int):
    """The expert's handover episode in the physics: the env, its final obs, and every state the episode passed."""
    from academy.sim.experts import make_expert

    env, expert = WorkcellEnv("handover"), make_expert("handover")
    obs, _ = env.reset(seed)
    expert.reset(obs)
    states = []
    for _ in range(env.max_steps):
        states.append(_state(obs))
        obs, _, done, truncated, info = env.step(expert.act(obs))
        if done or truncated:
            break
    assert info["success"]
    return env, obs, states


def test_the_task_judge_applies_the_tasks_own_rule_to_a_state():
    """The expert's episode in the physics: the judge agrees with the env at the first state (no), the
    last recorded one (the part in place but still held: no) and the state the env calls a success."""
    from academy.dream.judge import TaskJudge

    state = _state
    env, obs, states = _expert_handover(3)
    first = states[0]
    judge = TaskJudge("handover", 3)
    assert judge(np.concatenate([first, states[-1], state(obs)])).tolist() == [False, False, True]
    moved = state(obs).copy()
    moved[0, DIMS["observation.state"] + 70 : DIMS["observation.state"] + 72] += 0.05  # the part 5 cm off: no
    assert not judge(moved)[0]
    judge.close()
    # one judge for many scenes (the what-if rehearsal's): each row is judged in its own seed's scene,
    # whose tray target differs; the verdict follows the part's distance to that scene's target
    from academy.sim.tasks.handover import TARGET_RADIUS

    part = obs["objects"][-1][:2]
    seeds = list(range(4, 40))
    near = [np.linalg.norm(part - np.array(env.reset(s)[1]["goal"]["target"][:2])) < TARGET_RADIUS for s in seeds]
    assert any(near) and not all(near)  # the scenes disagree about this state
    scenes = TaskJudge("handover")
    assert scenes(np.concatenate([state(obs)] * len(seeds)), seeds).tolist() == near
    with pytest.raises(ValueError, match="scene seed"):
        scenes(state(obs))
    scenes.close()
    env.close()


def test_dream_writes_kept_variations_and_checks_them(context_ds, small_model, tiny_policy, tmp_path):
    # a tiny model judges nothing a success at 0.5; a threshold of 0 keeps every sure dream, so the
    # writing path and the check are exercised end to end
    cfg = VariationConfig(variations=12, batch=6, judge="head", success_threshold=0.0, max_uncertainty=1e6, threads=1)
    summary = dream(small_model, tiny_policy, context_ds, 1, tmp_path / "dreams", cfg)
    assert summary["variations"] == 12 and summary["kept"] == summary["written"] == summary["model_success"] == 12
    ds = Dataset(tmp_path / "dreams")
    table = ds.episode_table()
    assert len(table) == 12 and set(table["academy/source"]) == {"dream"} and table["academy/synthetic"].all()
    assert set(table["academy/seed"]) == {summary["seed"]}
    eps = Episodes.load([tmp_path / "dreams"])
    kept = [r for r in summary["rollouts"] if r["kept"]]
    for e, row in zip(eps.context, kept):
        np.testing.assert_allclose(e[0], row["context"], rtol=1e-6)
    # stored up to the step each was called a success; its settling steps go to the physics check only
    assert table["length"].tolist() == [r["called"] for r in kept]
    assert all(r["length"] == r["called"] + cfg.settle_steps and len(r["actions"]) == r["length"] for r in kept)
    physics = check_in_physics(summary, n=3, workers=1)
    assert physics["kept"]["replayed"] == 3 and physics["rejected"]["replayed"] == 0
    assert 0 <= physics["kept"]["succeeded"] <= 3
    strict = dream(small_model, tiny_policy, context_ds, 1, None, VariationConfig(variations=4, max_uncertainty=0.0,
                                                                                  threads=1))
    assert strict["kept"] == 0 and strict["written"] == 0  # nothing is sure enough at a zero spread limit


def test_a_dream_called_a_success_settles_before_it_ends(context_ds, small_model, tiny_policy):
    """With the recheck: row 0's verdict holds throughout, a success 3 steps after it was first
    called; row 1's holds once and no longer after the settling, a failure ending there; row 2 is
    never called and runs to the time limit. Without it, both called rows are successes."""
    from academy.dream.variations import dream_rollouts
    from academy.learn.policy import Policy

    source = Source.load(context_ds, 0)
    asked = {0: 0, 1: 0, 2: 0}

    def judge(states, rows):
        verdict = []
        for r in rows.tolist():
            asked[r] += 1
            verdict.append(r == 0 or (r == 1 and asked[r] == 1))
        return np.array(verdict)

    model, policy, x0 = WorldModel.load(small_model), Policy.load(tiny_policy), np.repeat(source.x[:1], 3, 0)
    context = np.repeat(source.context[:1], 3, 0)
    cfg = VariationConfig(min_steps=2, settle_steps=3, settle_recheck=True, judge_from=-np.inf, threads=1)
    r = dream_rollouts(model, policy, "handover", source.goal[0], x0, context, 12, cfg, np.random.default_rng(0), judge)
    assert r["success"].tolist() == [True, False, False]
    assert r["length"].tolist() == [5, 5, 12]  # called at step 2, settled 3 steps later; the limit
    assert r["called"].tolist() == [2, 2, 12]
    assert asked == {0: 2, 1: 2, 2: 11}  # a called row is asked again only when it has settled
    assert r["actions"].shape[1] == 12
    # by default the settling plays the release out and the call stands
    asked.update({0: 0, 1: 0, 2: 0})
    cfg.settle_recheck = False
    r = dream_rollouts(model, policy, "handover", source.goal[0], x0, context, 12, cfg, np.random.default_rng(0), judge)
    assert r["success"].tolist() == [True, True, False] and r["length"].tolist() == [5, 5, 12]
    assert asked == {0: 1, 1: 1, 2: 11}


def test_dream_cli_names_bad_input(context_ds, small_model, tiny_policy, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["dream", "--from", "no-hash", "--policy", str(tiny_policy)])
    assert r.exit_code == 2 and "DATASET#EPISODE" in r.output
    r = runner.invoke(app, ["dream", "--from", f"{context_ds}#99", "--policy", str(tiny_policy),
                            "--model", str(small_model), "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "no episode 99" in r.output
    r = runner.invoke(app, ["dream", "--from", f"{context_ds}#0", "--policy", str(tiny_policy), "--model",
                            str(small_model), "--variations", "4", "--check", "0", "--judge", "oracle"])
    assert r.exit_code == 1 and "judge must be 'task'" in r.output
    r = runner.invoke(app, ["dream", "--from", f"{context_ds}#0", "--policy", str(tiny_policy), "--model",
                            str(small_model), "--variations", "4", "--check", "2", "--out", str(tmp_path / "d"),
                            "--report", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["variations"] == 4 and "rollouts" not in report and "kept" in report["physics"]


def test_dream_scenes_branch_from_real_states_and_charge_uncertainty(context_ds, small_model):
    from academy.dream.imagine import DreamScenes

    eps = Episodes.load([context_ds])
    real = np.concatenate(eps.x)
    scenes = DreamScenes(str(small_model), [str(context_ds)], ["handover"] * 4, seed=3, horizon=5,
                         context_ranges={"friction": (0.3, 0.5)}, penalty=2.0)
    obs = scenes.reset()
    state = np.concatenate([obs["proprio"], obs["objects"].reshape(4, -1)], 1)
    for row in state:  # every branch starts at a recorded frame
        assert np.abs(real - row).max(1).min() == 0.0
    assert np.all((obs["context"][:, 0] >= 0.3) & (obs["context"][:, 0] <= 0.5))  # imagined: slipperier than recorded
    assert np.all(obs["context"][:, 1:] == 1.0)
    actions = obs["proprio"][:, :DIMS["action"]]
    ended = np.zeros(4, bool)
    for t in range(5):
        nxt, dense, success, trunc, info = scenes.step(actions)
        assert dense.shape == (4,) and np.all(info["penalty"] > 0)
        assert np.all(info["reset"] == (success | trunc))
        if t < 4:
            assert not trunc.any()  # no branch is cut before its horizon
        ended |= info["reset"]
    assert ended.all() and scenes.branches >= 8  # each row ended within the horizon and branched again
    with pytest.raises(ValueError, match="no episodes of"):
        DreamScenes(str(small_model), [str(context_ds)], ["place_part"])
    with pytest.raises(ValueError, match="shape"):
        scenes.step(np.zeros((3, DIMS["action"]), np.float32))


def test_dream_scenes_end_a_branch_where_the_tasks_rule_holds_in_its_scene(context_ds, small_model):
    """Imagined practice ends a branch by the task's rule in the scene of the episode it branched
    from, asked only where the model's predicted reward reaches 0.8."""
    import torch

    from academy.dream.imagine import DreamScenes

    eps = Episodes.load([context_ds])
    scenes = DreamScenes(str(small_model), [str(context_ds)], ["handover"] * 3, seed=0)
    scenes.reset()
    assert set(scenes.seeds.tolist()) <= set(eps.seeds)  # each branch carries its episode's scene
    env, obs, states = _expert_handover(3)
    env.close()
    scenes.x[:] = np.concatenate([_state(obs), _state(obs), states[0]])
    scenes.seeds[:], scenes.t[:] = 3, 10
    won = scenes._success({"reward": torch.tensor([1.0, 0.5, 1.0])})
    assert won.tolist() == [True, False, False]  # the rule holds; not asked (reward 0.5); asked, does not hold
    scenes.close()
    with pytest.raises(ValueError, match="judge"):
        DreamScenes(str(small_model), [str(context_ds)], ["handover"], judge="oracle")


def test_practice_in_imagination_trains_in_the_model_and_is_judged_in_physics(context_ds, small_model, tiny_policy,
                                                                               tmp_path):
    from academy.practice.run import PracticeConfig, practice

    cfg = PracticeConfig(policy=str(tiny_policy), out=str(tmp_path / "run"), tasks=["handover"], iterations=2,
                         scenes_per_task=3, steps=6, workers=1, eval_every=2, eval_episodes=2,
                         dream_model=str(small_model), dream_data=[str(context_ds)], dream_horizon=4)
    summary = practice(cfg)
    assert summary["updates"] == 2 and summary["env_steps"] == 2 * 3 * 6
    assert summary["time_share"]["physics"] > 0  # the steps were the model's, timed as the env's
    assert [e["update"] for e in summary["evaluations"]] == [0, 2]  # judged in the physics (evaluate_scenes)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(row["levels"] == log[0]["levels"] for row in log)  # no curriculum in imagination
    for bad, match in (({"robot": "AH1-0001"}, "not a robot"), ({"dream_data": []}, "branch from")):
        with pytest.raises(ValueError, match=match):
            practice(PracticeConfig(**{**cfg.__dict__, **bad}))


def test_what_if_rehearsal_runs_the_policy_under_unrecorded_physics(context_ds, small_model, tiny_policy, tmp_path):
    from academy.dream.whatif import rehearse

    eps = Episodes.load([context_ds])
    out = rehearse(str(small_model), str(tiny_policy), [str(context_ds)], {"slippery": {"friction": (0.3, 0.5)}},
                   episodes=5, flag_drop=-1.0)  # every what-if flagged: the flag follows the drop
    rows = out["tasks"]["handover"]
    assert list(rows) == ["as recorded", "slippery"]
    names = out["scenes"]["handover"]["names"]
    recorded = {n: c[0] for n, c in zip(eps.names, eps.context)}
    np.testing.assert_allclose(rows["as recorded"]["contexts"], [recorded[n] for n in names])
    slippery = np.array(rows["slippery"]["contexts"])
    assert np.all((slippery[:, 0] >= 0.3) & (slippery[:, 0] <= 0.5)) and np.all(slippery[:, 1:] == 1.0)
    for row in rows.values():
        assert 0.0 <= row["predicted_success"] <= 1.0 and row["uncertainty"] > 0
    drop = rows["as recorded"]["predicted_success"] - rows["slippery"]["predicted_success"]
    assert out["flagged"] == [{"task": "handover", "what_if": "slippery", "drop": round(drop, 3)}]
    runner = CliRunner()
    r = runner.invoke(app, ["dream", "whatif", "--policy", str(tiny_policy), "--model", str(small_model), "--data",
                            str(context_ds), "--what-if", "friction=0.3:0.5"])
    assert r.exit_code != 0 and "NAME:TERM=LOW:HIGH" in r.output
    r = runner.invoke(app, ["dream", "whatif", "--policy", str(tiny_policy), "--model", str(small_model), "--data",
                            str(context_ds), "--what-if", "icy:friction=0.2:0.3", "--episodes", "3",
                            "--report", str(tmp_path / "w.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "w.json").read_text())["what_ifs"] == {"icy": {"friction": [0.2, 0.3]}}
