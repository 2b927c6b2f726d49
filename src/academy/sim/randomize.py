"""Domain randomization as data: named terms with ranges, applied by one pure function.

``randomize(model, rng, config) -> model`` returns a new model and leaves its input alone.
Every term is listed in ``TERMS`` with its kind and nominal value; a ``RandomizationConfig``
says, for each term, whether it is on and its range. Runtime terms (action latency, sensor
noise) are written into the model's ``<custom><numeric>`` fields, so that a randomized model
is the whole description of its world and the env reads them back with ``runtime_terms``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import mujoco
import numpy as np

from academy.sim.world import OBJECTS, Workcell


class RandomizationError(ValueError):
    """A randomization config that cannot be used; the message names the term and the problem."""


@dataclass(frozen=True)
class Term:
    """One randomization term: on or off, and the range its value is drawn from (uniform)."""

    low: float
    high: float
    enabled: bool = True


@dataclass(frozen=True)
class TermSpec:
    kind: str  # "scale" (nominal 1, > 0), "offset" (nominal 0), "std" (>= 0), "steps" (int >= 0)
    doc: str
    apply: Callable[[mujoco.MjModel, Workcell, np.random.Generator, Term], None]


def _scale_rows(values: np.ndarray, rows: np.ndarray, rng, term: Term, cols=slice(None)) -> None:
    values[rows, cols] *= rng.uniform(term.low, term.high, (len(rows), 1))


def _friction(m, w, rng, t):
    _scale_rows(m.geom_friction, np.arange(m.ngeom), rng, t, slice(0, 1))


def _object_mass(m, w, rng, t):
    s = rng.uniform(t.low, t.high, len(OBJECTS))
    m.body_mass[w.object_body] *= s
    m.body_inertia[w.object_body] *= s[:, None]


def _object_size(m, w, rng, t):
    # uniform scaling of each object's single geom, keeping its density: mass ~ s^3, inertia ~ s^5
    s = rng.uniform(t.low, t.high, len(OBJECTS))
    for body, geom, k in zip(w.object_body, w.object_geom, s):
        m.geom_size[geom] *= k
        m.geom_rbound[geom] *= k
        m.geom_aabb[geom] *= k
        adr, num = m.body_bvhadr[body], m.body_bvhnum[body]
        m.bvh_aabb[adr : adr + num] *= k  # the collision mid-phase's bounding boxes
        m.body_mass[body] *= k**3
        m.body_inertia[body] *= k**5


def _actuator_gain(m, w, rng, t):
    k = rng.uniform(t.low, t.high, len(w.actuator_ids))
    m.actuator_gainprm[w.actuator_ids, 0] *= k
    m.actuator_biasprm[w.actuator_ids, 1] *= k


def _joint_damping(m, w, rng, t):
    m.dof_damping[w.robot_dof_adr] *= rng.uniform(t.low, t.high, len(w.robot_dof_adr))


def _lighting(m, w, rng, t):
    m.light_diffuse *= rng.uniform(t.low, t.high, (m.nlight, 1))
    m.light_pos += rng.uniform(-0.3, 0.3, m.light_pos.shape) * (t.high - t.low)


def _camera_position(m, w, rng, t):
    m.cam_pos += rng.uniform(t.low, t.high, m.cam_pos.shape)


def _camera_rotation(m, w, rng, t):
    for c in range(m.ncam):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        dq = np.zeros(4)
        mujoco.mju_axisAngle2Quat(dq, axis, rng.uniform(t.low, t.high))
        out = np.zeros(4)
        mujoco.mju_mulQuat(out, m.cam_quat[c], dq)
        m.cam_quat[c] = out


def _numeric(name: str, integer: bool = False):
    def apply(m, w, rng, t):
        value = rng.integers(int(t.low), int(t.high) + 1) if integer else rng.uniform(t.low, t.high)
        m.numeric(name).data[0] = value

    return apply


TERMS: dict[str, TermSpec] = {
    "friction": TermSpec("scale", "sliding friction of every geom", _friction),
    "object_mass": TermSpec("scale", "mass and inertia of each cell and the part", _object_mass),
    "object_size": TermSpec("scale", "size of each cell and the part (density kept)", _object_size),
    "actuator_gain": TermSpec("scale", "position gain kp of each servo", _actuator_gain),
    "joint_damping": TermSpec("scale", "damping of each robot joint", _joint_damping),
    "action_latency": TermSpec(
        "steps", "control steps between a command and its servo", _numeric("action_latency_steps", True)
    ),
    "proprio_noise": TermSpec(
        "std", "joint-position sensor noise (rad or m; velocity noise is 10x)", _numeric("proprio_noise_std")
    ),
    "object_noise": TermSpec("std", "object-position sensor noise (m)", _numeric("object_noise_std")),
    "encoder_offset": TermSpec(
        "std", "each joint encoder's zero offset, drawn per episode (rad or m; a calibration error)",
        _numeric("encoder_offset_std"),
    ),
    "lighting": TermSpec("scale", "brightness of each light (positions move too)", _lighting),
    "camera_position": TermSpec("offset", "each camera's position offset (m)", _camera_position),
    "camera_rotation": TermSpec("offset", "each camera's rotation about a random axis (rad)", _camera_rotation),
}

TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "friction": (0.8, 1.25),
    "object_mass": (0.8, 1.25),
    "object_size": (0.95, 1.05),
    "actuator_gain": (0.9, 1.1),
    "joint_damping": (0.8, 1.25),
    "action_latency": (0, 1),
    "proprio_noise": (0.0, 0.002),
    "object_noise": (0.0, 0.002),
    "encoder_offset": (0.0, 0.004),
    "lighting": (0.7, 1.3),
    "camera_position": (-0.01, 0.01),
    "camera_rotation": (-0.03, 0.03),
}


@dataclass(frozen=True)
class RandomizationConfig:
    """Every term, on or off, with its range. ``RandomizationConfig()`` is the training default."""

    terms: Mapping[str, Term] = field(
        default_factory=lambda: {k: Term(*v) for k, v in TRAINING_RANGES.items()}
    )

    def __post_init__(self) -> None:
        missing = sorted(set(TERMS) - set(self.terms))
        unknown = sorted(set(self.terms) - set(TERMS))
        if unknown:
            raise RandomizationError(f"unknown randomization term(s) {unknown}; known: {sorted(TERMS)}")
        if missing:
            raise RandomizationError(f"randomization config is missing term(s) {missing}")
        for name, term in self.terms.items():
            _check_term(name, term)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "RandomizationConfig":
        """Terms from plain data, e.g. ``{"friction": {"low": 0.5, "high": 1.5}, "lighting": False}``.

        A term may be a mapping (low, high, enabled), a [low, high] pair, or a bool; terms not
        named keep their training default.
        """
        if not isinstance(spec, Mapping):
            raise RandomizationError(f"randomization config must be a mapping, got {type(spec).__name__}")
        terms = dict(cls().terms)
        for name, value in spec.items():
            if name not in TERMS:
                raise RandomizationError(f"unknown randomization term '{name}'; known: {sorted(TERMS)}")
            base = terms[name]
            if isinstance(value, bool):
                terms[name] = replace(base, enabled=value)
            elif isinstance(value, Mapping):
                extra = sorted(set(value) - {"low", "high", "enabled"})
                if extra:
                    raise RandomizationError(f"term '{name}': unknown field(s) {extra}")
                terms[name] = Term(
                    low=value.get("low", base.low),
                    high=value.get("high", base.high),
                    enabled=value.get("enabled", base.enabled),
                )
            elif isinstance(value, (list, tuple)) and len(value) == 2:
                terms[name] = Term(value[0], value[1], True)
            else:
                raise RandomizationError(
                    f"term '{name}': expected a bool, [low, high] or a mapping, got {value!r}"
                )
        return cls(terms)

    def only(self, *names: str) -> "RandomizationConfig":
        """The same ranges with only the named terms on."""
        for n in names:
            if n not in TERMS:
                raise RandomizationError(f"unknown randomization term '{n}'; known: {sorted(TERMS)}")
        return RandomizationConfig({k: replace(t, enabled=k in names) for k, t in self.terms.items()})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {k: {"low": t.low, "high": t.high, "enabled": t.enabled} for k, t in self.terms.items()}


def _check_term(name: str, term: Term) -> None:
    if not isinstance(term, Term):
        raise RandomizationError(f"term '{name}' must be a Term, got {type(term).__name__}")
    for label, v in (("low", term.low), ("high", term.high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise RandomizationError(f"term '{name}': {label} must be a finite number, got {v!r}")
    if not isinstance(term.enabled, bool):
        raise RandomizationError(f"term '{name}': enabled must be true or false, got {term.enabled!r}")
    if term.low > term.high:
        raise RandomizationError(f"term '{name}': low {term.low} is above high {term.high}")
    kind = TERMS[name].kind
    if kind == "scale" and term.low <= 0:
        raise RandomizationError(f"term '{name}' is a scale factor and must stay above 0, got low {term.low}")
    if kind in ("std", "steps") and term.low < 0:
        raise RandomizationError(f"term '{name}' cannot be negative, got low {term.low}")
    if kind == "steps" and (int(term.low) != term.low or int(term.high) != term.high):
        raise RandomizationError(f"term '{name}' counts control steps and needs whole numbers")


def randomize(
    model: mujoco.MjModel, rng: np.random.Generator, config: RandomizationConfig | None = None
) -> mujoco.MjModel:
    """A randomized copy of ``model``: each enabled term of ``config`` applied in ``TERMS`` order."""
    config = RandomizationConfig() if config is None else config
    out = copy.deepcopy(model)
    world = Workcell(out)
    for name, spec in TERMS.items():
        term = config.terms[name]
        if term.enabled:
            spec.apply(out, world, rng, term)
    mujoco.mj_setConst(out, mujoco.MjData(out))  # derived constants (subtree masses, ...) follow
    return out


def runtime_terms(model: mujoco.MjModel) -> tuple[int, float, float, float]:
    """(action latency in control steps, joint noise std, object noise std, encoder offset std)
    stored in a model."""
    return (
        int(model.numeric("action_latency_steps").data[0]),
        float(model.numeric("proprio_noise_std").data[0]),
        float(model.numeric("object_noise_std").data[0]),
        float(model.numeric("encoder_offset_std").data[0]),
    )


assert set(TRAINING_RANGES) == set(TERMS)


# The physical context: the few scale factors a world model is conditioned on and a what-if sets.
# Each is one number per episode, applied alike to every geom (friction) or every object (mass,
# size), so that an episode's context is a plain vector a dataset can store beside its frames.
CONTEXT_TERMS: tuple[str, ...] = ("friction", "object_mass", "object_size")
NOMINAL_CONTEXT: tuple[float, ...] = (1.0, 1.0, 1.0)


def check_context(values) -> np.ndarray:
    """A context as a (len(CONTEXT_TERMS),) array of positive scale factors, or a clear error."""
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(CONTEXT_TERMS))
        if unknown:
            raise RandomizationError(f"unknown context term(s) {unknown}; known: {list(CONTEXT_TERMS)}")
        values = [values.get(k, 1.0) for k in CONTEXT_TERMS]
    out = np.asarray(values, dtype=float).reshape(-1)
    if out.shape != (len(CONTEXT_TERMS),):
        raise RandomizationError(f"a context has {len(CONTEXT_TERMS)} values {list(CONTEXT_TERMS)}, got {out.shape[0]}")
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise RandomizationError(f"context scale factors must be finite and above 0, got {out.tolist()}")
    return out


def apply_context(model: mujoco.MjModel, values) -> mujoco.MjModel:
    """A copy of ``model`` with the context's scale factors applied (each term at one value)."""
    v = check_context(values)
    spec = {k: {"low": float(x), "high": float(x), "enabled": True} for k, x in zip(CONTEXT_TERMS, v)}
    return randomize(model, np.random.default_rng(0), RandomizationConfig.from_dict(spec).only(*CONTEXT_TERMS))


def draw_context(ranges: Mapping[str, tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
    """One context from ``ranges`` (term -> (low, high)); terms not named stay nominal."""
    check_context({k: lo for k, (lo, _) in ranges.items()})
    check_context({k: hi for k, (_, hi) in ranges.items()})
    return np.array([rng.uniform(*ranges[k]) if k in ranges else 1.0 for k in CONTEXT_TERMS])
