import numpy as np

from academy.evaluate import evaluate
from academy.sim.env import WorkcellEnv
from academy.sim.experts import make_expert
from academy.sim.rollout_expert import rollout


class HoldStill:
    def reset(self, obs):
        self.q = np.asarray(obs["proprio"][:28], float)

    def act(self, obs):
        return self.q


def test_rollout_counts_success_and_failure():
    env = WorkcellEnv("handover")
    good = rollout(env, make_expert("handover"), 5)
    bad = rollout(env, HoldStill(), 5)
    assert good.success and good.steps < env.max_steps
    assert not bad.success and bad.steps == env.max_steps  # ran to the time limit


def test_evaluate_tallies_per_task():
    r = evaluate("expert", ["handover"], episodes=2, reality=False, first_seed=0, workers=1)
    assert r == {"handover": {"nominal_success": 1.0, "nominal_episodes": 2}}
