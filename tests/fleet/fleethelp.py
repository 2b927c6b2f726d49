"""Helpers for the fleet tests."""

import httpx

PROFILE = "ah1-sim"


def start_rollout(url: str, release: int, **settings) -> dict:
    r = httpx.post(f"{url}/v1/rollouts", json={"release": release, "profile": PROFILE, "canary_share": 1.0,
                                               "min_episodes": 1, **settings}, timeout=60)
    r.raise_for_status()
    return r.json()
