"""Practice: residual RL in simulation on a learned policy, with a curriculum and randomization.

``academy practice`` (run.py) is the entry point; residual.py is the network it trains,
ppo.py the update, rollout.py the workers (local or Ray), curriculum.py the ladder of terms.
"""
