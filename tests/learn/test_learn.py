import subprocess
import sys

import numpy as np
import pytest
import torch

from academy.data.collect import collect
from academy.learn.checkpoint import example_inputs
from academy.learn.policy import Policy, PolicyAgent, env_obs_batch
from academy.learn.train import TrainConfig, train
from academy.sim.env import WorkcellEnv


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos") / "ds"
    collect("handover", 3, root, workers=1)
    return root


@pytest.fixture(scope="module")
def checkpoint(demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("pol") / "bc"
    cfg = TrainConfig(max_steps=400, max_minutes=2, batch_size=64, hidden=64, layers=2, threads=1)
    info = train(demos, out, cfg)
    return out, info


def test_training_lowers_the_loss(checkpoint):
    _, info = checkpoint
    assert info["steps"] == 400
    assert info["final_loss"] < 0.6 * info["first_loss"]  # 0.56 with the input-scale floor (0.45 without)
    assert info["val_episodes"] == 1 and info["val_loss"] is not None


def test_checkpoint_reloads_and_acts(checkpoint):
    out, _ = checkpoint
    policy = Policy.load(out)
    env = WorkcellEnv("handover")
    obs, _ = env.reset(7)
    agent = PolicyAgent(policy)
    agent.reset(obs)
    for _ in range(3):
        a = agent.act(obs)
        assert a.shape == (28,) and np.all(np.isfinite(a))
        obs, *_ = env.step(a)


def test_exported_graphs_load_without_academy(checkpoint):
    out, _ = checkpoint
    policy = Policy.load(out)
    inputs = example_inputs(policy.cfg, batch=3)
    inputs = (torch.randn_like(inputs[0]), torch.randn_like(inputs[1]), torch.randn_like(inputs[2]),
              torch.tensor([0, 1, 2]), torch.zeros_like(inputs[4]), torch.randn_like(inputs[5]))
    with torch.no_grad():
        ours = policy.model(*inputs).numpy()
    np.savez(out / "probe.npz", *[t.numpy() for t in inputs], expected=ours)
    script = f"""
import sys, numpy as np, torch
assert "academy" not in sys.modules
d = np.load({str(out / 'probe.npz')!r})
xs = [torch.from_numpy(d[f"arr_{{i}}"]) for i in range(6)]
m = torch.export.load({str(out / 'model.pt2')!r}).module()
print(float(np.abs(m(*xs).detach().numpy() - d["expected"]).max()))
"""
    res = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True)
    assert float(res.stdout.strip()) < 1e-4
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(out / "model.onnx"))
    feeds = dict(zip(["state", "env", "goal", "task", "instruction", "previous_action"], [t.numpy() for t in inputs]))
    np.testing.assert_allclose(sess.run(None, feeds)[0], ours, atol=1e-4)


class Countdown(torch.nn.Module):
    """A stand-in network whose k-th call predicts the chunk [k, k, ...] (for checking the ensembling)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg, self.calls = cfg, 0

    def forward(self, state, env, goal, task, instruction, previous_action):
        self.calls += 1
        return torch.full((state.shape[0], self.cfg.chunk, self.cfg.action_dim), float(self.calls))

    def encode_actions(self, joints):
        return joints


def test_temporal_ensembling_weights(checkpoint):
    out, _ = checkpoint
    cfg = Policy.load(out).cfg
    policy = Policy(Countdown(cfg), ensemble_m=0.5)
    obs = {k: np.zeros((1, d)) for k, d in cfg.obs_dims.items()} | {"task": np.array([0])}
    acts = [policy.act(obs)[0, 0] for _ in range(3)]
    w = np.exp(-0.5 * np.arange(3))  # oldest prediction first, as in ACT
    assert acts[0] == pytest.approx(1.0)
    assert acts[1] == pytest.approx((1 * w[0] + 2 * w[1]) / w[:2].sum(), rel=1e-6)
    assert acts[2] == pytest.approx((1 * w[0] + 2 * w[1] + 3 * w[2]) / w.sum(), rel=1e-6)
    receding = Policy(Countdown(cfg), execution="receding", replan=2)
    assert [receding.act(obs)[0, 0] for _ in range(5)] == [1, 1, 2, 2, 3]


def test_bad_observations_are_named(checkpoint):
    out, _ = checkpoint
    policy = Policy.load(out)
    env = WorkcellEnv("handover")
    obs, _ = env.reset(0)
    batch = env_obs_batch([obs])
    with pytest.raises(KeyError, match="observation.goal"):
        policy.act({k: v for k, v in batch.items() if k != "observation.goal"})
    with pytest.raises(ValueError, match="unknown tasks"):
        policy.act(batch | {"task": np.array(["juggle"])})
    with pytest.raises(ValueError, match="observation.state"):
        policy.act(batch | {"observation.state": np.zeros((1, 3))})
    assert policy.act(batch | {"task": np.array(["handover"])}).shape == (1, 28)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        Policy.load(tmp_path)


def test_transformer_body_trains_and_exports(demos, tmp_path):
    cfg = TrainConfig(arch="transformer", max_steps=30, max_minutes=2, batch_size=32, hidden=32, layers=1, threads=1)
    info = train(demos, tmp_path / "tf", cfg)
    assert info["final_loss"] < info["first_loss"]
    policy = Policy.load(tmp_path / "tf")
    obs, _ = WorkcellEnv("handover").reset(0)
    assert policy.act(env_obs_batch([obs])).shape == (1, 28)
    assert (tmp_path / "tf" / "model.onnx").exists() and (tmp_path / "tf" / "model.pt2").exists()


def test_hand_kinematics_match_mujoco():
    import mujoco

    from academy.learn.kinematics import HandFK
    from academy.sim import robot
    from academy.sim.world import Workcell, load_model

    m = load_model()
    d, w = mujoco.MjData(m), Workcell(m)
    fk = HandFK(HandFK.specs(m))
    q = np.random.default_rng(0).uniform(*w.joint_range.T, (8, 28))
    pos, rot = fk(torch.tensor(q, dtype=torch.float32))
    for i in range(len(q)):
        d.qpos[w.robot_qpos_adr] = q[i]
        mujoco.mj_kinematics(m, d)
        for s, side in enumerate(robot.SIDES):
            site = w.grasp_site[side]
            assert np.abs(d.site_xpos[site] - pos[i, s].numpy()).max() < 1e-5
            assert np.abs(d.site_xmat[site].reshape(3, 3) - rot[i, s].numpy()).max() < 1e-5


def test_hand_actions_round_trip_through_ik():
    """Expert joint targets -> hand poses (FK) -> joints (IK from the last command): the hands land
    where the expert's did, to a fraction of a millimetre."""
    from academy.learn.actions import HandActions, HandSolver
    from academy.learn.kinematics import HandFK
    from academy.sim.experts import make_expert
    from academy.sim.world import load_model

    env = WorkcellEnv("sort_cells")
    expert = make_expert("sort_cells")
    obs, _ = env.reset(3)
    expert.reset(obs)
    targets = []
    for _ in range(120):
        targets.append(expert.act(obs))
        obs, *_ = env.step(targets[-1])
    q = torch.tensor(np.array(targets), dtype=torch.float32)
    specs = HandFK.specs(load_model())
    hands = HandActions(specs)(q).numpy()
    assert hands.shape == (120, 32)
    solver, fk = HandSolver(), HandFK(specs)
    prev = np.asarray(env_obs_batch([env.reset(3)[0]])["observation.state"])[:, :28]
    worst = 0.0
    for t in range(len(hands)):
        prev = solver(hands[t : t + 1], prev)
        pos, _ = fk(torch.tensor(prev, dtype=torch.float32))
        want, _ = fk(q[t : t + 1])
        worst = max(worst, float((pos - want).norm(dim=-1).max()))
    assert worst < 1e-3
    # the non-arm joints (waist, neck, fingers) pass through unchanged
    from academy.learn.actions import PASS_INDEX

    assert np.allclose(prev[0, PASS_INDEX], q[-1, PASS_INDEX].numpy(), atol=1e-6)


def test_hand_action_policy_trains_reloads_and_exports(demos, tmp_path):
    cfg = TrainConfig(max_steps=30, max_minutes=2, batch_size=32, hidden=32, layers=1, threads=1, actions="hands")
    train(demos, tmp_path / "hands", cfg)
    policy = Policy.load(tmp_path / "hands")
    obs, _ = WorkcellEnv("handover").reset(0)
    batch = env_obs_batch([obs])
    chunk = policy.predict_chunk(batch)
    assert chunk.shape == (1, 10, 32)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "hands" / "model.onnx"))
    inputs = [t.numpy() for t in policy._inputs(batch)]
    out = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), inputs)})[0]
    assert np.abs(out - chunk).max() < 1e-3
    joints = policy.act(batch)
    assert joints.shape == (1, 28) and np.all(np.isfinite(joints))


def test_unknown_action_space_is_named(demos, tmp_path):
    with pytest.raises(ValueError, match="unknown action space 'wheels'"):
        train(demos, tmp_path / "x", TrainConfig(max_steps=2, actions="wheels"))


def test_input_scales_have_a_floor(checkpoint):
    # joints the demos barely move must not turn sensor noise into inputs many stds out
    from academy.learn.train import INPUT_STD_FLOOR

    model = Policy.load(checkpoint[0]).model
    for norm in [*model.norm.values(), model.action_norm]:
        assert float(norm.std.min()) >= INPUT_STD_FLOOR - 1e-6  # float32
    assert float(model.norm["observation_state"].std.max()) > INPUT_STD_FLOOR  # moving joints keep their own scale


def test_training_goes_on_from_a_checkpoint(checkpoint, demos, tmp_path):
    path, info = checkpoint
    cfg = TrainConfig(max_steps=50, max_minutes=2, batch_size=64, hidden=64, layers=2, threads=1, init_from=str(path))
    more = train(demos, tmp_path / "more", cfg)
    assert more["first_loss"] < 0.8 * info["first_loss"]  # it starts where the checkpoint left off, not afresh
    before, after = Policy.load(path).model, Policy.load(tmp_path / "more").model
    assert torch.equal(before.norm["observation_state"].mean, after.norm["observation_state"].mean)  # scales kept
    with pytest.raises(ValueError, match=r"differs in \['hidden'\]"):
        train(demos, tmp_path / "wider", TrainConfig(max_steps=1, hidden=32, layers=2, init_from=str(path)))


@pytest.fixture(scope="module")
def two_tasks(demos, tmp_path_factory):
    from academy.data.store import merge

    root = tmp_path_factory.mktemp("two")
    collect("place_part", 1, root / "place", workers=1)
    return merge([demos, root / "place"], root / "both")


def test_balanced_tasks_draw_each_task_equally_often(two_tasks):
    from academy.learn.train import _frame_weights

    both = two_tasks
    eps = list(both.episodes["episode_index"])
    assert _frame_weights(both, eps, None) is None  # by default every frame weighs the same
    w = _frame_weights(both, eps, None, balance_tasks=True).numpy()
    task_of_frame = np.repeat(both.episodes["academy/task"].to_numpy(), both.episodes["length"].to_numpy())
    share = {t: w[task_of_frame == t].sum() / w.sum() for t in ("handover", "place_part")}
    # three handover episodes and one place_part episode: each task still half the draws
    assert share["handover"] == pytest.approx(0.5) and share["place_part"] == pytest.approx(0.5)
    # with source weights too, a task's total stays its share
    w2 = _frame_weights(both, eps, {"expert": 2.0}, balance_tasks=True).numpy()
    assert w2[task_of_frame == "place_part"].sum() / w2.sum() == pytest.approx(0.5)


def test_training_noise_is_scaled_within_each_task(two_tasks, tmp_path):
    from academy.learn.train import INPUT_STD_FLOOR, Frames
    from academy.sim.tasks import REGISTRY

    tasks = list(REGISTRY)
    frames = Frames(two_tasks, list(two_tasks.episodes["episode_index"]), tasks)
    std = {k: v["std"] for k, v in frames.task_stats(len(tasks)).items()}
    key = "observation.environment_state"
    for t in ("handover", "place_part"):
        mine = frames.x[key][frames.task == tasks.index(t)]
        assert torch.allclose(std[key][tasks.index(t)], mine.std(0).clamp_min(INPUT_STD_FLOOR))
    # a task with no frames gets the floor; pooled over both tasks, the object slots spread wider
    assert torch.all(std[key][tasks.index("sort_cells")] == INPUT_STD_FLOOR)
    pooled = frames.x[key].std(0).clamp_min(INPUT_STD_FLOOR)
    assert float(pooled.max()) > float(std[key][tasks.index("place_part")].max())
    with pytest.raises(ValueError, match="noise_scale"):
        train(two_tasks.root, tmp_path / "x", TrainConfig(max_steps=1, noise_scale="global", threads=1))


def test_per_task_input_scales(two_tasks, tmp_path):
    from academy.learn.train import INPUT_STD_FLOOR, Frames
    from academy.sim.tasks import REGISTRY

    tasks = list(REGISTRY)
    out = tmp_path / "tin"
    train(two_tasks.root, out, TrainConfig(max_steps=20, batch_size=32, hidden=32, layers=1, threads=1,
                                           val_fraction=0.0, input_norm="task"))
    model = Policy.load(out).model
    assert model.cfg.input_norm == "task"
    frames = Frames(two_tasks, list(two_tasks.episodes["episode_index"]), tasks)
    key = "observation.environment_state"
    norm = model.norm[key.replace(".", "_")]
    assert norm.mean.shape == (len(tasks), frames.x[key].shape[1])
    for t in ("handover", "place_part"):  # each task's row: that task's frames' scales
        i = tasks.index(t)
        mine = frames.x[key][frames.task == i]
        assert torch.allclose(norm.mean[i], mine.mean(0), atol=1e-5)
        assert torch.allclose(norm.std[i], mine.std(0).clamp_min(INPUT_STD_FLOOR), atol=1e-5)
        z = norm(mine, torch.full((len(mine),), i))
        assert float(z.mean(0).abs().max()) < 1e-3  # centred within its own task
    # the same raw input reads differently under each task's scales
    x = frames.x[key][:2]
    assert not torch.allclose(norm(x, torch.tensor([0, 0])), norm(x, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="pass each row's task index"):  # never broadcast over every task's row
        norm(x)
    # the training noise reads the same flag: each row's own task's std
    assert torch.equal(norm.scale(torch.tensor([1, 0])), norm.std[[1, 0]])
    # the exported program carries the per-task scales: it matches the module
    inputs = example_inputs(model.cfg, batch=2)
    inputs = (*(torch.randn_like(v) for v in inputs[:3]), torch.tensor([0, 1]), inputs[4], torch.randn_like(inputs[5]))
    program = torch.export.load(str(out / "model.pt2")).module()
    with torch.no_grad():
        assert torch.allclose(program(*inputs), model(*inputs), atol=1e-5)
    with pytest.raises(ValueError, match="unknown input normalisation 'dataset'"):
        train(two_tasks.root, tmp_path / "x", TrainConfig(max_steps=1, threads=1, input_norm="dataset"))
