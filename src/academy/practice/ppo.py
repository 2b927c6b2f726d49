"""A compact PPO update for the residual actor-critic (clipped surrogate, GAE, value loss).

Why not rsl_rl or Stable-Baselines3: both own the rollout loop and expect a policy that maps
one observation to one action distribution. Here the action is the frozen chunked policy's
ensembled command plus a Gaussian residual, the base keeps state across steps, and rollouts run
in workers that may be Ray actors; the update itself is ~60 lines, so it is written here.

The guard against forgetting the imitation behaviour is a penalty on the mean residual
(``residual_coef * mean(mu^2)``, in units of the residual's scale): with it, practice moves
away from the demonstrated actions only where the return pays for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from academy.practice.residual import ResidualActorCritic


@dataclass
class PPOConfig:
    lr: float = 1e-4
    epochs: int = 4
    minibatches: int = 4
    clip: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    residual_coef: float = 0.5
    max_grad_norm: float = 1.0
    target_kl: float = 0.01  # stop an update's epochs early once the policy moved this far

    def to_dict(self) -> dict:
        return asdict(self)


def advantages(batch: dict[str, np.ndarray], gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """GAE over (T, N) arrays; an episode cut by its time limit is bootstrapped with its value."""
    rewards = batch["rewards"] + gamma * batch["values"] * batch["truncs"]
    values, dones = batch["values"], batch["dones"].astype(np.float64)
    T = rewards.shape[0]
    adv = np.zeros_like(rewards, dtype=np.float64)
    gae = np.zeros(rewards.shape[1])
    next_value = batch["last_value"]
    for t in reversed(range(T)):
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * live - values[t]
        gae = delta + gamma * lam * live * gae
        adv[t] = gae
        next_value = values[t]
    return adv, adv + values


def update(net: ResidualActorCritic, opt: torch.optim.Optimizer, batch: dict[str, np.ndarray], cfg: PPOConfig,
           generator: torch.Generator) -> dict[str, float]:
    adv, ret = advantages(batch, cfg.gamma, cfg.lam)
    flat = lambda x: torch.as_tensor(np.asarray(x).reshape(-1, *np.asarray(x).shape[2:]))  # noqa: E731
    feats, actions, old_logp = flat(batch["feats"]), flat(batch["actions"]), flat(batch["logp"]).float()
    adv, ret = flat(adv).float(), flat(ret).float()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    n = feats.shape[0]
    size = max(1, n // cfg.minibatches)
    stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "kl": [], "residual_rms": [], "clip_frac": []}
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)
        kls = []
        for start in range(0, n - size + 1, size):
            idx = order[start : start + size]
            mu, value = net(feats[idx])
            dist = net.distribution(mu)
            logp = dist.log_prob(actions[idx]).sum(-1)
            ratio = torch.exp(logp - old_logp[idx])
            a = adv[idx]
            policy_loss = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
            value_loss = (value - ret[idx]).pow(2).mean()
            residual = mu.pow(2).mean()
            loss = (policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * dist.entropy().sum(-1).mean()
                    + cfg.residual_coef * residual)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            opt.step()
            with torch.no_grad():
                kl = ((ratio - 1) - torch.log(ratio)).mean().item()
            kls.append(kl)
            stats["policy_loss"].append(policy_loss.item())
            stats["value_loss"].append(value_loss.item())
            stats["kl"].append(kl)
            stats["residual_rms"].append(residual.sqrt().item())
            stats["clip_frac"].append(((ratio - 1).abs() > cfg.clip).float().mean().item())
        if np.mean(kls) > cfg.target_kl:
            break
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    out["std"] = float(net.log_std.detach().exp().mean())
    return out
