"""The update server's state in the release database: robots, their health reports, rollouts.

The same database as the release registry (``academy.release.registry``): a SQLite file by
default, PostgreSQL by URL. Tables:

- ``robots``: one row per serial, updated at every check-in (hardware profile, installed
  release, slot state, agent state, battery, charging, last seen);
- ``health``: what robots report after an install or a shift (release, installed or not,
  episodes, successes, safety stops);
- ``rollouts``: a release going out to one hardware profile in cohorts, with its state
  (running, paused, aborted, done), its current cohort and the reason it stopped;
- ``events``: what robots log at work (installs, rollbacks, safety stops, deadline misses),
  unique by the robot's idempotency key.

Health reports sent through a robot's telemetry spool carry a key too, and a key already
stored is not stored again. Columns added since a database was created are added to it when
it is opened (``_add_missing_columns``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, DateTime, Float, Integer, String, Text, create_engine, event, func, insert, inspect,
                        select, text, update)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class FleetBase(DeclarativeBase):
    pass


class RobotRow(FleetBase):
    __tablename__ = "robots"
    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    installed_release: Mapped[int] = mapped_column(Integer, default=0)
    slot_state: Mapped[dict] = mapped_column(JSON, default=dict)
    agent_state: Mapped[str] = mapped_column(String(32), default="idle")
    battery: Mapped[float] = mapped_column(Float, default=1.0)
    charging: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkins: Mapped[int] = mapped_column(Integer, default=0)


class HealthRow(FleetBase):
    __tablename__ = "health"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    release: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # install, shift, shadow
    ok: Mapped[bool] = mapped_column(Boolean)
    episodes: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    safety_stops: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)  # telemetry idempotency key
    steps: Mapped[int | None] = mapped_column(Integer, default=0, nullable=True)  # shadow: control steps beside the active policy
    divergence: Mapped[float | None] = mapped_column(Float, default=0.0, nullable=True)  # shadow: the largest episode's mean divergence, rad
    deadline_misses: Mapped[int | None] = mapped_column(Integer, default=0, nullable=True)  # shift: control steps over budget


class EventRow(FleetBase):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    release: Mapped[int] = mapped_column(Integer, default=0)
    t: Mapped[float] = mapped_column(Float)  # the robot's clock (epoch seconds) when it happened
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RolloutRow(FleetBase):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release: Mapped[int] = mapped_column(Integer)
    previous: Mapped[int] = mapped_column(Integer, default=0)  # the release the fleet ran before
    profile: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="running")  # running, paused, aborted, done
    cohort: Mapped[int] = mapped_column(Integer, default=0)  # index of the newest cohort let in
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    rollback_release: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shadow_cleared: Mapped[int | None] = mapped_column(Integer, default=-1, nullable=True)  # last cohort out of shadow
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _sqlite_wal(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def now() -> datetime:
    return datetime.now(timezone.utc)


def _add_missing_columns(engine) -> None:
    """ALTER TABLE ADD COLUMN for model columns a database made by an older Academy lacks (nullable)."""
    have = inspect(engine)
    with engine.begin() as conn:
        for table in FleetBase.metadata.sorted_tables:
            existing = {c["name"] for c in have.get_columns(table.name)}
            for col in table.columns:
                if col.name not in existing:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {col.name} '
                                      f'{col.type.compile(dialect=engine.dialect)}'))


def _upsert(engine):
    dialect = engine.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as upsert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:  # pragma: no cover - the two databases Academy supports
        raise ValueError(f"the fleet database supports SQLite and PostgreSQL, not {dialect}")
    return upsert


class FleetDB:
    def __init__(self, url: str):
        sqlite = url.startswith("sqlite")
        kw = {"connect_args": {"timeout": 30, "check_same_thread": False}} if sqlite else {"pool_pre_ping": True}
        self.engine = create_engine(url, **kw)
        if sqlite:  # many robots check in at once: write-ahead log, one fsync per checkpoint
            event.listen(self.engine, "connect", _sqlite_wal)
        FleetBase.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def robots(self, profile: str | None = None) -> list[RobotRow]:
        with self.session() as s:
            q = select(RobotRow).order_by(RobotRow.serial)
            if profile:
                q = q.where(RobotRow.profile == profile)
            return list(s.scalars(q))

    def profiles_of(self, serials: set[str]) -> set[str]:
        """The hardware profiles of the given robots (those that have checked in)."""
        with self.session() as s:
            return set(s.scalars(select(RobotRow.profile).where(RobotRow.serial.in_(list(serials))).distinct()))

    def health(self, release: int | None = None) -> list[HealthRow]:
        with self.session() as s:
            q = select(HealthRow).order_by(HealthRow.id)
            if release is not None:
                q = q.where(HealthRow.release == release)
            return list(s.scalars(q))

    # ------------------------------------------------------------------ batched writes (the server's group commit)
    def upsert_robots(self, rows: list[dict]) -> list[str]:
        """Record a batch of check-ins in one transaction; returns the serials seen for the first time.

        ``rows``: RobotRow fields without ``checkins``; a serial may appear more than once (its
        last row wins, its check-ins all count).
        """
        last: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for r in rows:
            last[r["serial"]] = r
            counts[r["serial"]] = counts.get(r["serial"], 0) + 1
        values = [{**r, "last_seen": now(), "checkins": counts[k]} for k, r in last.items()]
        stmt = _upsert(self.engine)(RobotRow)
        keep = {c: stmt.excluded[c] for c in ("profile", "installed_release", "slot_state", "agent_state",
                                               "battery", "charging", "last_seen")}
        stmt = stmt.on_conflict_do_update(index_elements=["serial"],
                                          set_={**keep, "checkins": RobotRow.checkins + stmt.excluded.checkins})
        with self.session() as s, s.begin():
            known = set(s.scalars(select(RobotRow.serial).where(RobotRow.serial.in_(list(last)))))
            s.execute(stmt, values)
        return [k for k in last if k not in known]

    def add_health(self, rows: list[dict]) -> list[int]:
        """Insert a batch of health reports in one transaction; returns their ids, in order.

        A successful install also moves the robot's installed release (it is committed there
        before the report is sent), so the fleet's view does not wait for its next check-in.
        """
        stamp = now()
        with self.session() as s, s.begin():
            keys = [r["key"] for r in rows if r.get("key")]
            known = dict(s.execute(select(HealthRow.key, HealthRow.id).where(HealthRow.key.in_(keys))).all()) if keys else {}
            new, seen = [], set()
            for r in rows:  # a key stored already, or twice in this batch, is stored once
                if not r.get("key") or (r["key"] not in known and r["key"] not in seen):
                    new.append(r)
                    seen.add(r.get("key"))
            res = s.execute(insert(HealthRow).returning(HealthRow.id, sort_by_parameter_order=True),
                            [{**r, "created": stamp} for r in new]) if new else []
            fresh = iter([i for (i,) in res])
            ids, by_key = [], dict(known)
            for r in rows:
                k = r.get("key")
                if k and k in by_key:
                    ids.append(by_key[k])
                else:
                    ids.append(next(fresh))
                    if k:
                        by_key[k] = ids[-1]
            for r in new:
                if r["kind"] == "install" and r["ok"]:
                    s.execute(update(RobotRow).where(RobotRow.serial == r["serial"],
                                                     RobotRow.installed_release < r["release"])
                              .values(installed_release=r["release"]))
            return ids

    def add_events(self, rows: list[dict]) -> int:
        """Store a batch of robot events; a key stored already is skipped. Returns how many were new."""
        if not rows:
            return 0
        stamp = now()
        stmt = _upsert(self.engine)(EventRow).on_conflict_do_nothing(index_elements=["key"]).returning(EventRow.id)
        with self.session() as s, s.begin():
            return len(s.execute(stmt, [{**r, "created": stamp} for r in rows]).all())

    def events(self, kind: str | None = None, serial: str | None = None) -> list[EventRow]:
        with self.session() as s:
            q = select(EventRow).order_by(EventRow.id)
            if kind:
                q = q.where(EventRow.kind == kind)
            if serial:
                q = q.where(EventRow.serial == serial)
            return list(s.scalars(q))

    def event_counts(self) -> dict[str, int]:
        with self.session() as s:
            return dict(s.execute(select(EventRow.kind, func.count()).group_by(EventRow.kind)).all())
