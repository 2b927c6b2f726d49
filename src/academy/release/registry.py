"""The release registry: releases, their lineage, exams and mastered skills, in a SQL database.

SQLAlchemy 2 over a SQLite file by default, or any URL it takes (``postgresql+psycopg://...``):
``Registry(url)``. Tables:

- ``releases``: number (only goes up), parent, created, policy and manifest digests, the
  hardware profiles it fits, the manifest, the exam report and the gate's decision;
- ``exams``: every exam a candidate sat, released or refused, with the decision and its reasons;
- ``skills``: every skill ever mastered and the release that first mastered it (a skill never
  leaves this table, so it never leaves the exam).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class ReleaseError(ValueError):
    """A release the registry refuses (a number not above the last one, an unknown parent, ...)."""


class Base(DeclarativeBase):
    pass


class ReleaseRow(Base):
    __tablename__ = "releases"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    parent: Mapped[int | None] = mapped_column(ForeignKey("releases.number"), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    profiles: Mapped[list] = mapped_column(JSON)
    manifest: Mapped[dict] = mapped_column(JSON)
    exam: Mapped[dict] = mapped_column(JSON)
    gate: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")


class ExamRow(Base):
    __tablename__ = "exams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy: Mapped[str] = mapped_column(Text)
    policy_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    against: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the release it was compared with
    release: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the release it became, if any
    passed: Mapped[bool] = mapped_column()
    reasons: Mapped[list] = mapped_column(JSON)
    report: Mapped[dict] = mapped_column(JSON)


class SkillRow(Base):
    __tablename__ = "skills"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_mastered: Mapped[int] = mapped_column(ForeignKey("releases.number"))


def default_url(home: str | Path) -> str:
    return f"sqlite:///{Path(home).resolve() / 'registry.db'}"


class Registry:
    def __init__(self, url: str):
        self.url = url
        kw = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, **kw)
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ releases
    def last_number(self) -> int:
        with Session(self.engine) as s:
            return s.scalar(select(func.max(ReleaseRow.number))) or 0

    def current(self) -> dict | None:
        """The newest release (the one a candidate is examined against), or None."""
        n = self.last_number()
        return self.get(n) if n else None

    def get(self, number: int) -> dict:
        with Session(self.engine) as s:
            row = s.get(ReleaseRow, number)
            if row is None:
                raise ReleaseError(f"no release {number} in the registry ({self.url})")
            return _release_dict(row)

    def releases(self) -> list[dict]:
        with Session(self.engine) as s:
            return [_release_dict(r) for r in s.scalars(select(ReleaseRow).order_by(ReleaseRow.number))]

    def lineage(self, number: int) -> list[dict]:
        """Release ``number`` and its ancestors, newest first."""
        out = []
        n: int | None = number
        while n is not None:
            r = self.get(n)
            out.append(r)
            n = r["parent"]
        return out

    def add_release(self, number: int, parent: int | None, policy_sha256: str, manifest_sha256: str,
                    profiles: list[str], manifest: dict, exam: dict, gate: dict, note: str = "") -> None:
        """Record a release; refused unless ``number`` is above every release so far."""
        with Session(self.engine) as s, s.begin():
            last = s.scalar(select(func.max(ReleaseRow.number))) or 0
            if number <= last:
                raise ReleaseError(f"release number {number} is not above the last release ({last}): "
                                   "release numbers only go up")
            if parent is not None and s.get(ReleaseRow, parent) is None:
                raise ReleaseError(f"parent release {parent} is not in the registry")
            s.add(ReleaseRow(number=number, parent=parent, created=datetime.now(timezone.utc),
                             policy_sha256=policy_sha256, manifest_sha256=manifest_sha256, profiles=profiles,
                             manifest=manifest, exam=exam, gate=gate, note=note))
            try:
                s.flush()
            except IntegrityError as e:  # another writer took the number first
                raise ReleaseError(f"release number {number} is already taken") from e

    # ------------------------------------------------------------------ exams and skills
    def record_exam(self, report: dict, passed: bool, reasons: list[str], against: int | None,
                    release: int | None = None) -> int:
        with Session(self.engine) as s, s.begin():
            row = ExamRow(created=datetime.now(timezone.utc), policy=report["policy"],
                          policy_sha256=report.get("policy_sha256"), against=against, release=release,
                          passed=passed, reasons=reasons, report=_lean(report))
            s.add(row)
            s.flush()
            return row.id

    def exams(self) -> list[dict]:
        with Session(self.engine) as s:
            return [{"id": r.id, "created": r.created.isoformat(), "policy": r.policy, "against": r.against,
                     "release": r.release, "passed": r.passed, "reasons": r.reasons}
                    for r in s.scalars(select(ExamRow).order_by(ExamRow.id))]

    def mastered(self) -> list[str]:
        with Session(self.engine) as s:
            return [r.name for r in s.scalars(select(SkillRow).order_by(SkillRow.name))]

    def master(self, skills: list[str], release: int) -> list[str]:
        """Add skills first mastered by ``release``; returns those that were new."""
        new = []
        with Session(self.engine) as s, s.begin():
            for name in skills:
                if s.get(SkillRow, name) is None:
                    s.add(SkillRow(name=name, first_mastered=release))
                    new.append(name)
        return new


def _lean(report: dict) -> dict:
    """An exam report without its per-episode list (kept in the bundle, not the database)."""
    return {k: v for k, v in report.items() if k != "episodes"}


def _release_dict(r: ReleaseRow) -> dict:
    return {"number": r.number, "parent": r.parent, "created": r.created.isoformat(), "policy_sha256": r.policy_sha256,
            "manifest_sha256": r.manifest_sha256, "profiles": r.profiles, "manifest": r.manifest, "exam": r.exam,
            "gate": r.gate, "note": r.note}


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
