"""Helpers for the fleet tests."""

import httpx

PROFILE = "ah1-sim"


def start_rollout(url: str, release: int, **settings) -> dict:
    """A rollout to every robot at once. Safety stops are judged by rate against robots not let in
    (there are none), so a stop never aborts it: the shipped policies stop now and then on reality
    robots, and these tests are about installs, shadows and telemetry, not about stops."""
    r = httpx.post(f"{url}/v1/rollouts", json={"release": release, "profile": PROFILE, "canary_share": 1.0,
                                               "min_episodes": 1, "safety_stops": "rate", **settings}, timeout=60)
    r.raise_for_status()
    return r.json()
