"""Safety limits and the monitor that counts their violations, one control step at a time.

What a robot's safety controller would watch, measured on the simulated (or reality-robot)
physics at the end of every 50 ms control step:

- ``joint_limit``: a waist, neck or arm joint within ``joint_limit_margin`` of its range's end;
- ``torque``: a waist or arm actuator at ``torque_fraction`` of its force range or more (the
  servo saturating: it is pushing against something or being pushed);
- ``contact_force``: the robot pressing on any one body (summed over their contact points)
  with a normal force above ``contact_force`` newtons, about ISO/TS 15066's quasi-static
  limits (a finger on a task object is not counted: the grip squeezes by design, and the
  finger servos are limited to 20 N);
- ``self_collision``: a wrist, hand or finger geom of one arm closer than ``self_clearance``
  to a geom of the other arm or of the torso and head (the robot's own geoms do not collide in
  the physics, so this is measured as a distance). Forearms against the torso are not
  checked: the scripted experts' reaches sweep the forearm capsule through the chest's box
  (up to 7 cm deep), a limit of the robot model and the experts' IK, noted in docs/release.md;
- ``zone_speed``: a grasp site inside the person zone (a box where a coworker may reach in,
  marked in the scene as the site ``person_zone``) moving faster than ``zone_speed`` m/s (250
  mm/s is the reduced speed ISO 10218 names for collaborative operation).

``env.enable_safety(limits)`` gives an env (or a reality robot) a ``SafetyMonitor``, which is
told of every reset and step; ``env.safety_log()`` returns one record per episode: the steps and,
per kind, the control steps over the limit and the worst value seen (units in ``UNITS``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import mujoco
import numpy as np

from academy.sim import robot
from academy.sim.world import OBJECTS

KINDS = ("joint_limit", "torque", "contact_force", "self_collision", "zone_speed")
# what an episode's "worst" value of each kind measures
UNITS = {"joint_limit": "rad into the margin before a stop", "torque": "of the force range",
         "contact_force": "N", "self_collision": "m of overlap", "zone_speed": "m/s in the zone"}
_HAND_LINKS = ("wrist", "wrist_pitch_link", "hand", "thumb", "index", "index_tip", "middle", "middle_tip")
_TORSO_BODIES = ("pelvis", "waist", "chest", "neck", "head")


@dataclass(frozen=True)
class SafetyLimits:
    joint_limit_margin: float = 0.005  # rad
    torque_fraction: float = 0.98  # of the actuator's force range
    contact_force: float = 150.0  # N, total normal force between the robot and one other body
    self_clearance: float = -0.005  # m: hands may touch (a handover), 5 mm into each other is a collision
    zone_speed: float = 0.25  # m/s of a grasp site inside the person zone
    zone_min: tuple[float, float, float] = (0.62, -0.55, 0.90)  # world-frame box of the person zone
    zone_max: tuple[float, float, float] = (0.80, 0.55, 1.60)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SafetyLimits":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown safety limit(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def load(cls, path: str | Path) -> "SafetyLimits":
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class _Episode:
    steps: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    worst: dict = field(default_factory=dict)  # kind -> the largest value seen past its limit


class SafetyMonitor:
    """Counts, per episode, the control steps on which each safety limit was crossed."""

    def __init__(self, limits: SafetyLimits = SafetyLimits()):
        self.limits = limits
        self.episodes: list[dict] = []
        self._current: _Episode | None = None
        self._model_id = None
        self._prev_sites: np.ndarray | None = None

    # ------------------------------------------------------------------ env hooks
    def on_reset(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.finish()
        if self._model_id != id(model):
            self._index(model)
        self._current = _Episode()
        self._prev_sites = data.site_xpos[self._sites].copy()

    def on_step(self, model: mujoco.MjModel, data: mujoco.MjData, dt: float) -> None:
        ep = self._current
        if ep is None:
            return
        ep.steps += 1
        L = self.limits
        q = data.qpos[self._q_adr]
        room = np.minimum(q - self._q_lo, self._q_hi - q)
        self._note(ep, "joint_limit", room.min() < L.joint_limit_margin, L.joint_limit_margin - room.min())
        frac = np.abs(data.actuator_force[self._act]) / self._act_limit
        self._note(ep, "torque", frac.max() >= L.torque_fraction, frac.max())
        force = self._max_contact_force(model, data)
        self._note(ep, "contact_force", force > L.contact_force, force)
        gap = self._min_self_distance(model, data)
        self._note(ep, "self_collision", gap < L.self_clearance, -gap)
        sites = data.site_xpos[self._sites]
        speed = np.linalg.norm(sites - self._prev_sites, axis=1) / dt
        inside = np.all((sites >= L.zone_min) & (sites <= L.zone_max), axis=1)
        zone_speed = float(speed[inside].max()) if inside.any() else 0.0
        self._note(ep, "zone_speed", zone_speed > L.zone_speed, zone_speed)
        self._prev_sites = sites.copy()

    def finish(self) -> None:
        """Close the running episode (if it stepped) into ``episodes``."""
        if self._current is not None and self._current.steps:
            self.episodes.append(self._record(self._current))
        self._current = None

    def log(self) -> list[dict]:
        """Copies of every episode's record, the running one (if it stepped) last."""
        out = [dict(e, worst=dict(e["worst"])) for e in self.episodes]
        if self._current is not None and self._current.steps:
            out.append(self._record(self._current))
        return out

    @staticmethod
    def _record(ep: _Episode) -> dict:
        return {"steps": ep.steps, **ep.counts, "worst": dict(ep.worst)}

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _note(ep: _Episode, kind: str, crossed: bool, value: float) -> None:
        if crossed:
            ep.counts[kind] += 1
            ep.worst[kind] = max(ep.worst.get(kind, -np.inf), float(value))

    def _index(self, model: mujoco.MjModel) -> None:
        self._model_id = id(model)
        watched = robot.TORSO_JOINTS + robot.HEAD_JOINTS + tuple(j for s in robot.SIDES for j in robot.arm_joints(s))
        jid = [model.joint(j).id for j in watched]
        self._q_adr = np.array([model.jnt_qposadr[j] for j in jid])
        self._q_lo, self._q_hi = model.jnt_range[jid, 0], model.jnt_range[jid, 1]
        powered = robot.TORSO_JOINTS + tuple(j for s in robot.SIDES for j in robot.arm_joints(s))
        self._act = np.array([model.actuator(j).id for j in powered])
        self._act_limit = np.abs(model.actuator_forcerange[self._act]).max(axis=1)
        self._sites = np.array([model.site(robot.GRASP_SITE[s]).id for s in robot.SIDES])
        body_geoms = {}
        for g in range(model.ngeom):
            body_geoms.setdefault(model.body(model.geom_bodyid[g]).name, []).append(g)
        root = model.body("pelvis").id
        self._robot_body = np.array([self._under(model, b, root) for b in range(model.nbody)])
        fingers = {model.body(f"{s}_{f}").id for s in robot.SIDES for f in robot.HAND_JOINT_SUFFIXES}
        self._finger_body = np.zeros(model.nbody, bool)
        self._finger_body[list(fingers)] = True
        self._object_body = np.zeros(model.nbody, bool)
        self._object_body[[model.body(name).id for name in OBJECTS]] = True
        arm = {s: [g for link in _HAND_LINKS for g in body_geoms.get(f"{s}_{link}", [])] for s in robot.SIDES}
        whole_arm = {s: [g for name, gs in body_geoms.items() if name.startswith(f"{s}_") for g in gs] for s in robot.SIDES}
        torso = [g for b in _TORSO_BODIES for g in body_geoms.get(b, [])]
        pairs = {tuple(sorted((a, b))) for a in arm["right"] for b in whole_arm["left"] + torso}
        pairs |= {tuple(sorted((a, b))) for a in arm["left"] for b in whole_arm["right"] + torso}
        self._pairs = sorted(pairs)
        self._fromto = np.zeros(6)

    @staticmethod
    def _under(model: mujoco.MjModel, body: int, root: int) -> bool:
        while body > 0:
            if body == root:
                return True
            body = model.body_parentid[body]
        return False

    def _max_contact_force(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """The largest total normal force between the robot and any one other body."""
        per_body: dict[int, float] = {}
        f6 = np.zeros(6)
        for i in range(data.ncon):
            c = data.contact[i]
            b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
            r1, r2 = self._robot_body[b1], self._robot_body[b2]
            if r1 == r2:
                continue  # the world touching itself (the robot's own geoms do not collide)
            if (self._finger_body[b1] and self._object_body[b2]) or (self._finger_body[b2] and self._object_body[b1]):
                continue  # the grip itself
            mujoco.mj_contactForce(model, data, i, f6)
            other = b2 if r1 else b1
            per_body[other] = per_body.get(other, 0.0) + abs(f6[0])
        return max(per_body.values(), default=0.0)

    def _min_self_distance(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        best, distmax = np.inf, 0.05
        for a, b in self._pairs:
            d = mujoco.mj_geomDistance(model, data, a, b, distmax, self._fromto)
            best = min(best, d)
        return float(best)


def summarize(episodes: list[dict]) -> dict:
    """Steps with each kind of violation, summed over episodes, and the worst values seen."""
    out = {k: int(sum(e[k] for e in episodes)) for k in KINDS}
    worst: dict = {}
    for e in episodes:
        for k, v in e.get("worst", {}).items():
            worst[k] = max(worst.get(k, -np.inf), v)
    out["worst"] = {k: round(v, 4) for k, v in worst.items()}
    out["steps"] = int(sum(e["steps"] for e in episodes))
    return out
