"""The update server: a FastAPI app over a release home.

Routes:

- ``GET /tuf/metadata/{name}``, ``GET /tuf/targets/{path}``: the signed TUF repository, as
  python-tuf's ngclient asks for it (consistent snapshots: ``N.root.json``, ``timestamp.json``,
  ``N.snapshot.json``, ``N.targets.json``, ``bundles/R/<sha256>.manifest.json``);
- ``GET /chunks/{sha256}``: a bundle chunk named by a signed manifest;
- ``POST /v1/checkin``: a robot's serial, hardware profile, installed release, slot state,
  agent state, battery and charging; the answer names the release it should install, if any,
  and the release it should run in shadow, if its rollout asks for a shadow period;
- ``POST /v1/health``: an install's outcome, a shift's episodes, successes, safety stops and
  deadline misses, or a shadow period's control steps, action divergence and would-be outcomes;
  reports move the running rollouts of the robot's profile (``RolloutController.evaluate``, at
  most twice a second per rollout; reading a rollout's status judges it too); a report with a
  ``key`` (sent from a robot's telemetry spool) is stored once however often it arrives;
- ``POST /v1/telemetry/episodes`` (one episode archive, ``academy.fleet.telemetry``),
  ``POST /v1/telemetry/events`` (a list of events), ``POST /v1/telemetry/ingest`` (the inbox
  into the fleet's LeRobot dataset), ``GET /v1/telemetry`` (counts);
- ``POST /v1/rollouts`` (release, profile, settings), ``POST /v1/rollouts/{id}/pause|resume|abort``,
  ``GET /v1/rollouts``, ``GET /v1/rollouts/{id}``: the rollout API;
- ``GET /v1/robots``: the fleet as last seen;
- ``GET /dashboard`` (and ``/``): a live web page of releases and their lineage, rollouts by
  cohort and the robots, redrawn every 2 s from ``GET /v1/dashboard`` (``deploy/dashboard.py``).

Check-ins and health reports are written by group commit (``GroupCommit``): each request waits
until its row is committed, and the rows that arrive while one transaction runs go into the
next, so a burst of a thousand robots costs a few transactions, not a thousand, and nothing is
answered before it is stored.

``academy serve`` runs it with uvicorn; ``ServerThread`` starts it on a loopback port for the
commands and tests that need one.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from academy.deploy.dashboard import PAGE as DASHBOARD_PAGE, dashboard_state
from academy.deploy.fleetdb import FleetDB
from academy.deploy.rollout import RolloutController, RolloutError, RolloutSettings
from academy.fleet.telemetry import EVENT_KINDS, TelemetryError, TelemetryStore
from academy.release.publish import ReleaseHome
from academy.release.registry import ReleaseError

KEEP_ALIVE_S = 75  # robots check in over long-lived connections (uvicorn's 5 s default drops them between rounds)
METADATA_NAME = re.compile(r"^(\d+\.)?(root|targets|snapshot|timestamp)\.json$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")


class CheckIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    profile: str = Field(min_length=1, max_length=64)
    installed_release: int = Field(ge=0)
    slot_state: dict = Field(default_factory=dict)
    agent_state: str = "idle"
    battery: float = Field(default=1.0, ge=0.0, le=1.0)
    charging: bool = False


class Health(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    release: int = Field(ge=0)
    kind: str = Field(pattern="^(install|shift|shadow)$")
    ok: bool
    episodes: int = Field(default=0, ge=0)
    successes: int = Field(default=0, ge=0)
    safety_stops: int = Field(default=0, ge=0)
    detail: str = ""
    key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{7,127}$")
    steps: int = Field(default=0, ge=0)
    divergence: float = Field(default=0.0, ge=0.0)
    deadline_misses: int = Field(default=0, ge=0)


class Event(BaseModel):
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{7,127}$")
    serial: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=32)
    release: int = Field(default=0, ge=0)
    t: float
    detail: dict = Field(default_factory=dict)


class NewRollout(BaseModel):
    """A release, a profile, and any ``RolloutSettings`` field (canary_share, growth, ...)."""

    model_config = ConfigDict(extra="allow")
    release: int = Field(ge=1)
    profile: str


class GroupCommit:
    """Batches requests' rows into shared transactions; ``submit`` returns once its row is stored.

    ``flush(items) -> results`` runs in a worker thread, one batch at a time; whatever arrives
    while it runs is the next batch. A failed flush fails every request in its batch.
    """

    def __init__(self, flush):
        self.flush = flush
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def submit(self, item):
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((item, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                results = await asyncio.to_thread(self.flush, [item for item, _ in batch])
            except Exception as e:  # every waiting request gets the error (a 500), nothing is half-answered
                results, error = None, e
            for i, (_, fut) in enumerate(batch):
                if fut.done():  # the client went away
                    continue
                if results is None:
                    fut.set_exception(error)
                else:
                    fut.set_result(results[i])


def create_app(home: str | Path, db_url: str | None = None, target_release=None) -> FastAPI:
    """The app over the release home ``home``.

    ``target_release(robot) -> int | None`` (robot: serial, profile, installed_release) decides what a checking-in robot should run; by
    default the rollout controller does (a robot gets a release only through a rollout).
    """
    rh = ReleaseHome(home, db_url)
    repo = rh.signing.repo
    db = FleetDB(rh.db_url)
    control = RolloutController(db, rh)
    app = FastAPI(title="Academy update server")
    telemetry = TelemetryStore(home)
    app.state.release_home, app.state.fleet, app.state.rollouts, app.state.telemetry = rh, db, control, telemetry
    decide = target_release or control.target

    def _file(base: Path, rel: str) -> FileResponse:
        path = (base / rel).resolve()
        if base.resolve() not in path.parents or not path.is_file():
            raise HTTPException(404, f"{rel} not found")
        return FileResponse(path)

    @app.get("/tuf/metadata/{name}")
    def metadata(name: str):
        if not METADATA_NAME.match(name):
            raise HTTPException(404, f"{name} is not a metadata file")
        return _file(repo / "metadata", name)

    @app.get("/tuf/targets/{path:path}")
    def targets(path: str):
        return _file(repo / "targets", path)

    @app.get("/chunks/{digest}")
    def chunk(digest: str):
        if not DIGEST.match(digest):
            raise HTTPException(404, "a chunk is named by its sha256")
        return _file(repo / "chunks", f"{digest[:2]}/{digest}")

    def store_checkins(batch: list[CheckIn]) -> list[dict]:
        if db.upsert_robots([c.model_dump() for c in batch]):
            control.invalidate()  # a robot joined: cohorts are counted over the profile's robots
        out = []
        for c in batch:
            robot = SimpleNamespace(serial=c.serial, profile=c.profile, installed_release=c.installed_release)
            target, shadow = decide(robot), control.shadow_target(robot)
            out.append({"release": target if target and target > c.installed_release else None,
                        "shadow": shadow if shadow and shadow > c.installed_release else None})
        return out

    def store_health(batch: list[Health]) -> list[int]:
        ids = db.add_health([h.model_dump() for h in batch])
        for profile in db.profiles_of({h.serial for h in batch}):
            for rid in control.running(profile):
                control.evaluate_soon(rid)
        return ids

    checkins, reports = GroupCommit(store_checkins), GroupCommit(store_health)

    @app.post("/v1/checkin")
    async def checkin(c: CheckIn) -> dict:
        return await checkins.submit(c)

    @app.post("/v1/health")
    async def health(h: Health) -> dict:
        return {"id": await reports.submit(h)}

    @app.post("/v1/telemetry/episodes")
    async def upload_episode(request: Request) -> dict:
        data = await request.body()
        try:
            return await asyncio.to_thread(telemetry.receive_episode, data)
        except TelemetryError as e:
            raise HTTPException(422, str(e)) from None

    @app.post("/v1/telemetry/events")
    async def upload_events(events: list[Event]) -> dict:
        unknown = sorted({e.kind for e in events} - set(EVENT_KINDS))
        if unknown:
            raise HTTPException(422, f"unknown event kinds {unknown}: one of {list(EVENT_KINDS)}")
        new = await asyncio.to_thread(db.add_events, [e.model_dump() for e in events])
        return {"stored": new, "duplicate": new < len(events)}

    @app.post("/v1/telemetry/ingest")
    async def ingest() -> dict:
        return await asyncio.to_thread(telemetry.ingest)

    @app.get("/v1/telemetry")
    def telemetry_counts() -> dict:
        return {"inbox": len(telemetry.inbox_files()), "events": db.event_counts()}

    def _rollout_call(fn, *args):
        try:
            return fn(*args)
        except (RolloutError, ReleaseError, ValueError) as e:
            raise HTTPException(409, str(e)) from None

    @app.post("/v1/rollouts")
    def new_rollout(r: NewRollout) -> dict:
        settings = r.model_dump(exclude={"release", "profile"})
        try:
            cfg = RolloutSettings(**settings)
        except TypeError as e:
            raise HTTPException(422, f"unknown rollout setting: {e}") from None
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        for running in control.running(r.profile):  # judge the evidence so far: a finished one is done, not busy
            control.evaluate(running)
        rid = _rollout_call(lambda: control.create(r.release, r.profile, cfg))
        return control.status(rid)

    @app.post("/v1/rollouts/{rollout_id}/{action}")
    def act_on_rollout(rollout_id: int, action: str) -> dict:
        return _rollout_call(control.set_state, rollout_id, action)

    @app.get("/v1/rollouts")
    def list_rollouts() -> list[dict]:
        return [control.evaluate(r["id"]) for r in control.rollouts()]

    @app.get("/v1/rollouts/{rollout_id}")
    def rollout_status(rollout_id: int) -> dict:
        return _rollout_call(control.evaluate, rollout_id)  # judged on the evidence so far, then shown

    @app.get("/v1/dashboard")
    def dashboard_json() -> dict:
        return dashboard_state(rh, db, control)

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page() -> str:
        return DASHBOARD_PAGE.read_text()

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    @app.get("/v1/robots")
    def robots() -> list[dict]:
        return [{"serial": r.serial, "profile": r.profile, "installed_release": r.installed_release,
                 "agent_state": r.agent_state, "slot_state": r.slot_state, "battery": r.battery,
                 "charging": r.charging, "last_seen": r.last_seen.isoformat(), "checkins": r.checkins}
                for r in db.robots()]

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving an app on a loopback port in a background thread (stopped by ``stop``)."""

    def __init__(self, app: FastAPI, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_keep_alive=KEEP_ALIVE_S))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the update server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
