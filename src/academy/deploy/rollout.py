"""The rollout controller: a release reaches one hardware profile's robots in cohorts, and backs out.

Cohorts: the robots of the profile, in an order fixed by the rollout (sha256 of its id and the
serial), let in by cumulative counts: a canary share first (10% by default, at least one
robot), then growing by a factor (2 by default) until every robot is in.

The controller moves on health reports (``evaluate``):

- abort if installs failed (``max_install_failures``), if a robot reports a failed health
  check or any safety stop on the release, or if the updated robots' task success is below
  the not-yet-updated robots' by more than ``success_margin`` (a one-sided test at ``alpha``,
  the exam gate's Farrington-Manning test, once each side has ``min_episodes`` episodes).
  With ``safety_stops="rate"``, for a fleet whose current release already stops now and
  then, safety stops abort when the updated robots' stops per episode are above the others'
  by the same test, not at the first one;
- advance to the next cohort once every robot let in has installed the release and the
  updated robots have ``min_episodes`` shift episodes between them without a reason to abort;
- done when the last cohort has done so.

On abort the controller rolls back by publishing a new, higher release that carries the
previous release's bundle (``ReleaseHome.republish``) and offers it to every robot that
installed the bad one. Why that and not a fleet instruction to revert slots: the agent's rule
that the installed release only goes up then has no exception (an instruction to revert is a
downgrade path an attacker with the server could use too), the signed repository and the
registry's lineage stay append-only and record the rollback, and a robot whose other slot no
longer holds the previous release (two updates since) is served like any other. The cost is
small: the rollback release is made of the previous release's chunks, which the robot still
holds for its other slot, so it downloads only the few small files that name the new number.
Pause stops cohorts from growing (robots already let in keep the release); resume continues.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import asdict, dataclass

from sqlalchemy import func, select

from academy.deploy.fleetdb import FleetDB, HealthRow, RobotRow, RolloutRow, now
from academy.exam.gate import drop_test

ACTIVE = ("running", "paused")


@dataclass
class RolloutSettings:
    canary_share: float = 0.10
    growth: float = 2.0
    min_episodes: int = 20
    success_margin: float = 0.10
    alpha: float = 0.05
    max_install_failures: int = 1
    safety_stops: str = "any"  # "any": one stop aborts; "rate": stops per episode above the baseline's
    shadow_steps: int = 0  # > 0: each cohort first runs the release in shadow, this many control steps per robot
    shadow_divergence: float = 0.05  # rad: a shadowing robot's episode mean action divergence above this aborts

    def __post_init__(self):
        if self.safety_stops not in ("any", "rate"):
            raise ValueError(f"safety_stops must be 'any' or 'rate', got {self.safety_stops!r}")
        if not 0 < self.canary_share <= 1:
            raise ValueError(f"canary_share must be in (0, 1], got {self.canary_share}")
        if self.growth <= 1:
            raise ValueError(f"growth must be above 1, got {self.growth}")
        if self.min_episodes < 1 or self.max_install_failures < 1:
            raise ValueError("min_episodes and max_install_failures must be at least 1")
        if self.shadow_steps < 0 or self.shadow_divergence <= 0:
            raise ValueError("shadow_steps must be at least 0 and shadow_divergence above 0")


def cohort_bounds(n: int, canary_share: float, growth: float) -> list[int]:
    """Cumulative robot counts let in by each cohort."""
    if n == 0:
        return [0]
    k = min(n, max(1, math.ceil(n * canary_share)))
    out = [k]
    while k < n:
        k = min(n, max(k + 1, math.ceil(k * growth)))
        out.append(k)
    return out


class RolloutError(ValueError):
    pass


class RolloutController:
    """Rollouts over the fleet database. ``target`` answers every check-in, so it reads a view of
    each profile's rollouts and let-in robots kept in memory: rebuilt when the controller changes a
    rollout or a robot joins (``invalidate``), and at least every ``view_ttl`` seconds (another
    server process may have changed the database)."""

    def __init__(self, db: FleetDB, release_home, view_ttl: float = 1.0):
        self.db = db
        self.rh = release_home
        self.view_ttl = view_ttl
        self._lock = threading.Lock()
        self._version = 0
        self._views: dict[str, tuple[int, float, list]] = {}  # profile -> (version, built at, [(row, let_in)])
        self._last_eval: dict[int, float] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._version += 1

    def evaluate_soon(self, rollout_id: int, every: float = 0.5) -> None:
        """``evaluate`` at most every ``every`` seconds per rollout (health reports come in bursts)."""
        t = time.monotonic()
        with self._lock:
            due = t - self._last_eval.get(rollout_id, -1e9) >= every
            if due:
                self._last_eval[rollout_id] = t
        if due:
            self.evaluate(rollout_id)

    # ------------------------------------------------------------------ commands
    def create(self, release: int, profile: str, settings: RolloutSettings | None = None) -> int:
        settings = settings or RolloutSettings()
        r = self.rh.registry.get(release)
        if profile not in r["profiles"]:
            raise RolloutError(f"release {release} does not fit {profile} (it fits {r['profiles']})")
        with self.db.session() as s, s.begin():
            aborted = s.scalars(select(RolloutRow).where(RolloutRow.release == release, RolloutRow.state == "aborted")).first()
            if aborted is not None:
                raise RolloutError(f"release {release} was aborted in rollout {aborted.id} ({aborted.reason[:200]}): "
                                   "publish a new release instead")
            busy = s.scalars(select(RolloutRow).where(RolloutRow.profile == profile, RolloutRow.state.in_(ACTIVE))).first()
            if busy is not None:
                raise RolloutError(f"rollout {busy.id} of release {busy.release} is still {busy.state} on {profile}: "
                                   "abort it or let it finish first")
            installed = [r.installed_release for r in s.scalars(select(RobotRow).where(RobotRow.profile == profile))]
            previous = max(set(installed), key=installed.count) if installed else 0
            if previous >= release:
                raise RolloutError(f"the {profile} fleet already runs release {previous}; release numbers only go up")
            row = RolloutRow(release=release, previous=previous, profile=profile, settings=asdict(settings),
                             created=now(), updated=now())
            s.add(row)
            s.flush()
            rid = row.id
        self.invalidate()
        return rid

    def set_state(self, rollout_id: int, action: str, reason: str = "") -> dict:
        with self.db.session() as s, s.begin():
            row = self._get(s, rollout_id)
            if action == "pause":
                if row.state != "running":
                    raise RolloutError(f"rollout {rollout_id} is {row.state}, not running")
                row.state = "paused"
            elif action == "resume":
                if row.state != "paused":
                    raise RolloutError(f"rollout {rollout_id} is {row.state}, not paused")
                row.state = "running"
            elif action == "abort":
                if row.state not in ACTIVE:
                    raise RolloutError(f"rollout {rollout_id} is {row.state} already")
            else:
                raise RolloutError(f"unknown rollout action {action!r}: pause, resume or abort")
            row.updated = now()
        self.invalidate()
        if action == "abort":
            self._abort(rollout_id, reason or "aborted by an operator")
        return self.status(rollout_id)

    # ------------------------------------------------------------------ what robots get
    def target(self, robot) -> int | None:
        """The release ``robot`` (serial, profile, installed_release) should install now, if any."""
        for row, let_in in self._view(robot.profile):
            if row.state in ACTIVE:
                return row.release if robot.serial in let_in and not self._in_shadow(row) else None
            if row.state == "aborted" and row.rollback_release and robot.installed_release >= row.release:
                return row.rollback_release
            if row.state == "done":
                return row.release
        return None

    def shadow_target(self, robot) -> int | None:
        """The release ``robot`` should run in shadow now (beside its own, without acting), if any."""
        for row, let_in in self._view(robot.profile):
            if row.state in ACTIVE:
                return row.release if robot.serial in let_in and self._in_shadow(row) else None
            return None
        return None

    @staticmethod
    def _in_shadow(row: RolloutRow) -> bool:
        """The rollout wants a shadow period of its current cohort that has not been cleared yet."""
        return bool(row.settings.get("shadow_steps")) and (row.shadow_cleared if row.shadow_cleared is not None
                                                             else -1) < row.cohort

    # ------------------------------------------------------------------ the decisions
    def evaluate(self, rollout_id: int) -> dict:
        """Advance, abort or hold a running rollout on the evidence so far; returns its status."""
        st = self.status(rollout_id)
        if st["state"] != "running":
            return st
        if st["abort_reason"]:
            self._abort(rollout_id, st["abort_reason"])
            return self.status(rollout_id)
        if st["shadow"]["required_steps"] and not st["shadow"]["cleared"] and st["shadow"]["complete"]:
            with self.db.session() as s, s.begin():  # the cohort has shadowed long enough within the bound
                row = s.get(RolloutRow, rollout_id, with_for_update=True)
                if row.state == "running" and row.cohort == st["cohort"]:
                    row.shadow_cleared, row.updated = row.cohort, now()
            self.invalidate()
            return self.status(rollout_id)
        if st["cohort_complete"]:
            with self.db.session() as s, s.begin():
                row = s.get(RolloutRow, rollout_id, with_for_update=True)
                if row.state != "running" or row.cohort != st["cohort"]:
                    return self.status(rollout_id)  # another report moved it first: judge again next time
                if row.cohort + 1 >= len(st["bounds"]):
                    row.state, row.reason = "done", "every cohort installed and healthy"
                else:
                    row.cohort += 1
                row.updated = now()
            self.invalidate()
        return self.status(rollout_id)

    def status(self, rollout_id: int) -> dict:
        with self.db.session() as s:
            row = self._get(s, rollout_id)
            serials = list(s.scalars(select(RobotRow.serial).where(RobotRow.profile == row.profile)))
            per_robot = s.execute(  # one row per (release, robot, kind, ok): sums, not every report
                select(HealthRow.release, HealthRow.serial, HealthRow.kind, HealthRow.ok, func.count(),
                       func.sum(HealthRow.episodes), func.sum(HealthRow.successes), func.sum(HealthRow.safety_stops),
                       func.coalesce(func.sum(HealthRow.steps), 0), func.coalesce(func.max(HealthRow.divergence), 0.0))
                .where(HealthRow.release.in_([row.release, row.previous]))
                .group_by(HealthRow.release, HealthRow.serial, HealthRow.kind, HealthRow.ok)).all()
            failed_detail = s.execute(select(HealthRow.serial, HealthRow.detail).where(
                HealthRow.release == row.release, HealthRow.kind == "install", HealthRow.ok.is_(False))
                .order_by(HealthRow.id).limit(3)).all()
        cfg = RolloutSettings(**row.settings)
        bounds, let_in = self._let_in(row, serials)
        mine = [h for h in per_robot if h[0] == row.release]
        installed = {h[1] for h in mine if h[2] == "install" and h[3]}
        failed = sum(h[4] for h in mine if h[2] == "install" and not h[3])
        shift = [h for h in mine if h[2] == "shift"]
        rest = [h for h in per_robot if h[0] == row.previous and h[2] == "shift" and h[1] not in let_in]
        upd = (sum(h[6] for h in shift), sum(h[5] for h in shift))
        base = (sum(h[6] for h in rest), sum(h[5] for h in rest))
        stops, base_stops = sum(h[7] for h in shift), sum(h[7] for h in rest)
        shadow = self._shadow_status(row, cfg, [h for h in mine if h[2] == "shadow"], let_in - installed)
        judged = upd[1] >= cfg.min_episodes and base[1] >= cfg.min_episodes
        reason = ""
        if failed >= cfg.max_install_failures:
            reason = f"{failed} install(s) failed: " + "; ".join(f"{a}: {d[:120]}" for a, d in failed_detail)
        elif any(not h[3] for h in shift):
            reason = f"failed health checks on {sorted(h[1] for h in shift if not h[3])}"
        elif shadow["over_bound"]:
            reason = (f"shadow divergence on {shadow['over_bound']}: {shadow['max_divergence']:.4f} rad "
                      f"above the bound of {cfg.shadow_divergence} rad")
        elif stops and cfg.safety_stops == "any":
            reason = f"{stops} safety stop(s) on updated robots"
        elif judged:
            z, p = drop_test(base[0], base[1], upd[0], upd[1], cfg.success_margin)
            _, p_stop = drop_test(base[1] - base_stops, base[1], upd[1] - stops, upd[1], cfg.success_margin)
            if p < cfg.alpha:
                reason = (f"task success of updated robots {upd[0]}/{upd[1]} is below the not-yet-updated robots' "
                          f"{base[0]}/{base[1]} by more than {cfg.success_margin:.0%} (one-sided p = {p:.4f})")
            elif cfg.safety_stops == "rate" and p_stop < cfg.alpha:
                reason = (f"safety stops of updated robots {stops}/{upd[1]} episodes are above the not-yet-updated "
                          f"robots' {base_stops}/{base[1]} by more than {cfg.success_margin:.0%} (one-sided p = {p_stop:.4f})")
        complete = bool(let_in) and let_in <= installed and upd[1] >= cfg.min_episodes
        return {"id": row.id, "release": row.release, "previous": row.previous, "profile": row.profile,
                "state": row.state, "reason": row.reason, "cohort": row.cohort, "bounds": bounds,
                "let_in": sorted(let_in), "installed": sorted(installed & let_in), "install_failures": failed,
                "updated_success": list(upd), "baseline_success": list(base),
                "updated_safety_stops": stops, "baseline_safety_stops": base_stops, "abort_reason": reason,
                "cohort_complete": complete, "rollback_release": row.rollback_release, "settings": row.settings,
                "shadow": shadow}

    @staticmethod
    def _shadow_status(row: RolloutRow, cfg: RolloutSettings, reports: list, pending: set[str]) -> dict:
        """The shadow evidence of the robots let in that have not installed yet (and of all, for show)."""
        steps: dict[str, int] = {}
        worst: dict[str, float] = {}
        for h in reports:
            steps[h[1]] = steps.get(h[1], 0) + int(h[8])
            worst[h[1]] = max(worst.get(h[1], 0.0), float(h[9]))
        over = sorted(s for s, d in worst.items() if d > cfg.shadow_divergence)
        cleared = (row.shadow_cleared if row.shadow_cleared is not None else -1) >= row.cohort
        return {"required_steps": cfg.shadow_steps, "bound": cfg.shadow_divergence,
                "cleared": bool(cfg.shadow_steps) and cleared,
                "complete": bool(pending) and all(steps.get(s, 0) >= cfg.shadow_steps for s in pending),
                "steps": {s: steps.get(s, 0) for s in sorted(pending)}, "max_divergence": max(worst.values(), default=0.0),
                "over_bound": over, "would_be_success": [sum(int(h[6]) for h in reports), sum(int(h[5]) for h in reports)]}

    def running(self, profile: str) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(RolloutRow.id).where(RolloutRow.profile == profile,
                                                              RolloutRow.state == "running")))

    def rollouts(self) -> list[dict]:
        with self.db.session() as s:
            ids = [r.id for r in s.scalars(select(RolloutRow).order_by(RolloutRow.id))]
        return [self.status(i) for i in ids]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _get(s, rollout_id: int) -> RolloutRow:
        row = s.get(RolloutRow, rollout_id)
        if row is None:
            raise RolloutError(f"no rollout {rollout_id}")
        return row

    @staticmethod
    def _let_in(row: RolloutRow, serials: list[str]) -> tuple[list[int], set[str]]:
        """The rollout's cohort bounds over these robots, and the robots its current cohort lets in."""
        order = sorted(serials, key=lambda s: hashlib.sha256(f"{row.id}:{s}".encode()).hexdigest())
        bounds = cohort_bounds(len(order), row.settings["canary_share"], row.settings["growth"])
        return bounds, set(order[: bounds[min(row.cohort, len(bounds) - 1)]])

    def _view(self, profile: str) -> list[tuple[RolloutRow, set[str] | None]]:
        """The profile's rollouts, newest first, each active one with the robots it lets in."""
        version, t = self._version, time.monotonic()
        cached = self._views.get(profile)
        if cached and cached[0] == version and t - cached[1] < self.view_ttl:
            return cached[2]
        with self.db.session() as s:
            rows = list(s.scalars(select(RolloutRow).where(RolloutRow.profile == profile).order_by(RolloutRow.id.desc())))
            serials = list(s.scalars(select(RobotRow.serial).where(RobotRow.profile == profile))) if rows else []
        view = []
        for row in rows:
            view.append((row, self._let_in(row, serials)[1] if row.state in ACTIVE else None))
        self._views[profile] = (version, t, view)
        return view

    def _abort(self, rollout_id: int, reason: str) -> None:
        with self.db.session() as s:
            row = self._get(s, rollout_id)
            previous, release = row.previous, row.release
        rollback = None
        if previous:
            rollback = self.rh.republish(previous, note=f"rollback: release {release} aborted ({reason[:200]}); "
                                                        f"the weights of release {previous}")
        with self.db.session() as s, s.begin():
            row = self._get(s, rollout_id)
            row.state, row.reason, row.rollback_release, row.updated = "aborted", reason, rollback, now()
        self.invalidate()
