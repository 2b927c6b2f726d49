"""The update server's dashboard: releases and their lineage, rollouts by cohort, the fleet's robots.

``GET /dashboard`` is one static page (``dashboard.html``, no external assets) that reads
``GET /v1/dashboard`` every two seconds and redraws, so it follows a rollout as robots check in.
``dashboard_state`` is that JSON: everything on the page comes from the release registry and the
fleet database the server already keeps; nothing is made up for show.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from academy.deploy.fleetdb import HealthRow

PAGE = Path(__file__).with_name("dashboard.html")
LAST_EPISODES = 3  # shift reports shown per robot


def _release_row(r: dict) -> dict:
    exam = r.get("exam") or {}
    skills = {name: {side: [s[side]["successes"], s[side]["episodes"]] for side in ("nominal", "reality")
                     if isinstance(s.get(side), dict)}
              for name, s in (exam.get("skills") or {}).items() if isinstance(s, dict) and not s.get("missing")}
    gate = r.get("gate") or {}
    kind = ("rollback of %d" % gate["rollback_of"] if gate.get("rollback_of") else
            "planner update of %d" % gate["planner_update_of"] if gate.get("planner_update_of") else "policy")
    planner = (r.get("manifest") or {}).get("planner") or {}
    return {"number": r["number"], "parent": r["parent"], "created": r["created"], "note": r["note"], "kind": kind,
            "skills": skills, "planner": planner.get("version"), "profiles": r["profiles"],
            "policy_sha256": r["policy_sha256"][:12], "delta": (gate.get("delta") or {}).get("ratio")}


def dashboard_state(release_home, fleet, control) -> dict:
    releases = [_release_row(r) for r in release_home.registry.releases()] if release_home.signing.initialized else []
    by_number = {r["number"]: r for r in releases}
    for r in releases:  # lineage: this release and its ancestors, newest first
        chain, n = [], r["number"]
        while n is not None and n in by_number and len(chain) < 50:
            chain.append(n)
            n = by_number[n]["parent"]
        r["lineage"] = chain
    rollouts = []
    for st in control.rollouts():
        cohorts = []
        for i, upto in enumerate(st["bounds"]):
            lo = st["bounds"][i - 1] if i else 0
            cohorts.append({"index": i, "robots": upto - lo, "let_in": i <= st["cohort"],
                            "current": i == st["cohort"] and st["state"] == "running"})
        rollouts.append({"id": st["id"], "release": st["release"], "previous": st["previous"],
                         "profile": st["profile"], "state": st["state"], "reason": st["reason"] or st["abort_reason"],
                         "cohort": st["cohort"], "cohorts": cohorts, "let_in": len(st["let_in"]),
                         "installed": len(st["installed"]), "fleet": st["bounds"][-1] if st["bounds"] else 0,
                         "updated_success": st["updated_success"], "baseline_success": st["baseline_success"],
                         "rollback_release": st["rollback_release"]})
    with fleet.session() as s:
        shifts = s.scalars(select(HealthRow).where(HealthRow.kind == "shift").order_by(HealthRow.id.desc())
                           .limit(2000)).all()
    last: dict[str, list[dict]] = {}
    for h in shifts:
        if len(last.setdefault(h.serial, [])) < LAST_EPISODES:
            last[h.serial].append({"release": h.release, "episodes": h.episodes, "successes": h.successes,
                                   "ok": h.ok, "when": h.created.isoformat(timespec="seconds")})
    robots = [{"serial": r.serial, "profile": r.profile, "installed_release": r.installed_release,
               "slot_state": r.slot_state, "agent_state": r.agent_state, "battery": r.battery, "charging": r.charging,
               "last_seen": r.last_seen.isoformat(timespec="seconds"), "checkins": r.checkins,
               "last_shifts": last.get(r.serial, [])} for r in fleet.robots()]
    return {"time": time.time(), "releases": releases[::-1], "rollouts": rollouts[::-1], "robots": robots,
            "events": fleet.event_counts()}
