"""The release gate: may a candidate replace the current release?

Refused if, for any skill in the exam (every skill the candidate knows and every skill ever
mastered), the candidate's success rate has dropped beyond ``tolerance`` against the current
release's, nominal or on the reality robots; or if any safety limit was crossed in any episode;
or if the policy fits no hardware profile.

"Dropped beyond tolerance" is a one-sided test, not a bare difference: the Farrington-Manning
score test of H0: p_current - p_candidate <= tolerance against H1: p_current - p_candidate >
tolerance, at level ``alpha``. At the exam's sample sizes a small drop is not evidence of a
regression and a large one is; the report gives the drop, z and p for every skill, so that a
person can see how close a call was. The test's power is limited by the sample sizes: with
tolerance 0.05 and alpha 0.05, a skill at 90% must fall by 25 points at 24 scenes each, by 22
at 32 and by 14 at 100 before the test refuses (``min_detectable_drop``); a larger exam
(``academy exam --episodes``) resolves smaller drops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy.stats import norm

from academy.exam.safety import KINDS, UNITS

MASTERY = 0.8  # nominal success at which a skill counts as mastered, and stays in the exam for good
MASTERY_MIN_EPISODES = 20  # ... measured over at least this many nominal scenes


def restricted_mle(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, float]:
    """Maximum-likelihood (p1, p2) under the constraint p1 - p2 = delta (Farrington & Manning, 1990)."""
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a * a) + d / (2 * a)
    u2 = b * b / (3 * a) ** 2 - c / (3 * a)
    u = math.copysign(math.sqrt(max(u2, 0.0)), v) if v != 0 else math.sqrt(max(u2, 0.0))
    if u == 0:
        r1 = -b / (3 * a)
    else:
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3
        r1 = 2 * u * math.cos(w) - b / (3 * a)
    r1 = min(1.0, max(delta, r1))
    return r1, r1 - delta


def drop_test(x_cur: int, n_cur: int, x_cand: int, n_cand: int, tolerance: float) -> tuple[float, float]:
    """(z, one-sided p) for H1: p_current - p_candidate > tolerance."""
    if n_cur <= 0 or n_cand <= 0:
        raise ValueError(f"a drop test needs episodes on both sides, got {n_cur} and {n_cand}")
    r1, r2 = restricted_mle(x_cur, n_cur, x_cand, n_cand, tolerance)
    var = r1 * (1 - r1) / n_cur + r2 * (1 - r2) / n_cand
    diff = x_cur / n_cur - x_cand / n_cand - tolerance
    if var <= 0:
        z = math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)
    else:
        z = diff / math.sqrt(var)
    return z, float(norm.sf(z))


def min_detectable_drop(p_current: float, n: int, tolerance: float = 0.05, alpha: float = 0.05) -> float:
    """The smallest drop from ``p_current`` (n episodes each side) that the test refuses."""
    x_cur = round(p_current * n)
    for x in range(x_cur, -1, -1):
        if drop_test(x_cur, n, x, n, tolerance)[1] < alpha:
            return (x_cur - x) / n
    return float("nan")


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    skills: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "reasons": self.reasons, "skills": self.skills}


def gate(candidate: dict, current: dict | None, mastered: list[str] = (), tolerance: float = 0.05,
         alpha: float = 0.05, current_name: str = "the current release") -> GateDecision:
    """Decide on a candidate's exam report against the current release's (None for a first release)."""
    reasons: list[str] = []
    table: dict = {}
    skills = list(dict.fromkeys(list(candidate["skills"]) + list(mastered)))
    for skill in skills:
        cand = candidate["skills"].get(skill)
        row: dict = {}
        table[skill] = row
        if cand is None:
            reasons.append(f"{skill}: mastered before, but not in the candidate's exam")
            continue
        if cand.get("missing") and skill in mastered:
            reasons.append(f"{skill}: mastered before, but the candidate policy was not trained for it")
        for kind in KINDS:
            count = cand["safety"].get(kind, 0)
            if count:
                worst = cand["safety"].get("worst", {}).get(kind)
                reasons.append(f"{skill}: safety limit '{kind}' crossed on {count} control steps "
                               f"(worst: {worst:.4g} {UNITS[kind]})" if worst is not None else
                               f"{skill}: safety limit '{kind}' crossed on {count} control steps")
        row["safety"] = {k: cand["safety"].get(k, 0) for k in KINDS}
        if current is None or skill not in current["skills"]:
            continue
        cur = current["skills"][skill]
        for part in ("nominal", "reality"):
            c, k = cur[part], cand[part]
            if not c["episodes"] or not k["episodes"]:
                continue
            z, p = drop_test(c["successes"], c["episodes"], k["successes"], k["episodes"], tolerance)
            drop = c["successes"] / c["episodes"] - k["successes"] / k["episodes"]
            row[part] = {"current": f"{c['successes']}/{c['episodes']}", "candidate": f"{k['successes']}/{k['episodes']}",
                         "drop": round(drop, 3), "z": round(z, 3), "p": round(p, 4)}
            if p < alpha:
                reasons.append(
                    f"{skill}: {part} success dropped from {c['successes']}/{c['episodes']} ({current_name}) to "
                    f"{k['successes']}/{k['episodes']}: a drop of {drop:.0%}, beyond the {tolerance:.0%} tolerance "
                    f"(one-sided Farrington-Manning test: z = {z:.2f}, p = {p:.4f} < {alpha})")
    inference = candidate.get("inference")
    if inference is not None and not inference.get("fits"):
        reasons.append(f"the policy fits no hardware profile (p99 {inference['p99_ms']} ms, "
                       f"{inference['peak_rss_mb']} MB peak memory)")
    return GateDecision(not reasons, reasons, table)


def newly_mastered(report: dict, threshold: float = MASTERY) -> list[str]:
    """Skills whose nominal success in ``report`` reaches the mastery threshold over enough scenes."""
    out = []
    for skill, s in report["skills"].items():
        n = s["nominal"]
        if (not s.get("missing") and n["episodes"] >= MASTERY_MIN_EPISODES
                and n["successes"] / n["episodes"] >= threshold):
            out.append(skill)
    return out
