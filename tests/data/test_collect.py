import numpy as np

from academy.data.collect import ACTION_KEY, STATE_KEY, collect
from academy.sim.env import WorkcellEnv
from academy.sim.experts import make_expert


def test_collect_records_expert_episodes_that_replay(tmp_path):
    ds = collect("handover", 2, tmp_path / "ds", first_seed=3, workers=1)
    ds.validate()
    assert ds.num_episodes == 2 and list(ds.episodes["academy/seed"]) == [3, 4]
    assert set(ds.episodes["academy/outcome"]) == {"success"}
    assert ds.tasks == ["Pick up the part with the right hand, pass it to the left, place it on the tray target."]
    # the recorded actions are the expert's: replaying them from the same seed gives the same states
    ep = ds.episode(0)
    env = WorkcellEnv("handover")
    obs, _ = env.reset(3)
    expert = make_expert("handover")
    expert.reset(obs)
    for t in range(5):
        np.testing.assert_allclose(ep[STATE_KEY][t], obs["proprio"], atol=1e-6)
        a = expert.act(obs)
        np.testing.assert_allclose(ep[ACTION_KEY][t], a, atol=1e-6)
        obs, *_ = env.step(a)
    assert ep["next.done"][-1, 0] and not ep["next.done"][:-1].any()
