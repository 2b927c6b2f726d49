"""The robot update agent: an explicit state machine whose state survives a crash.

    IDLE -> DOWNLOAD -> WAIT_FOR_CHARGING -> INSTALL -> VERIFY_BOOT -> COMMIT -> IDLE
                                                           \\-> ROLLBACK -> IDLE

One agent per robot, in a robot folder:

- ``trust/root.json``: the root of trust embedded at provisioning; ``tuf/``: ngclient's cache;
- ``chunks/``: downloaded bundle chunks, each verified against its sha256 before it is kept, so
  a download resumes where it stopped and a release ships as a delta of what is already here;
- ``slots/a``, ``slots/b``: two bundle folders (A/B); ``current``: a symlink to the committed
  slot, switched by an atomic rename; the robot's runtime loads its policy from there;
- ``state.json``: the agent's state, written atomically (temporary file, fsync, rename, fsync
  of the folder) before every step that has side effects, so each state's work is redone from
  the start after a crash, and each state's work is idempotent.

Rules it keeps: the manifest comes through python-tuf's ngclient ``Updater`` from the embedded
root, and every chunk and file is checked against it; the release number only goes up (a
release at or below the committed one is refused, as is any release already refused); the
bundle must list the robot's hardware profile; a bundle is installed whole into the inactive
slot or not at all; it installs only while the robot charges (deferral is counted and
reported, never overridden); the new slot must pass VERIFY_BOOT (every file against the
manifest, the policy loads, its inference p99 within the profile's budget, a self-test episode
without a safety-limit crossing) within ``MAX_BOOT_ATTEMPTS`` attempts, else ROLLBACK keeps
the previous slot.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from academy.release.bundle import BundleError, assemble, check_manifest, verify_bundle
from academy.release.signing import manifest_target_path

MAX_BOOT_ATTEMPTS = 3
MAX_BUNDLE_BYTES = 1 << 30  # a manifest naming more than this is refused before any chunk is fetched
SLOTS = ("a", "b")


class S(str, Enum):
    IDLE = "idle"
    DOWNLOAD = "download"
    WAIT_FOR_CHARGING = "wait_for_charging"
    INSTALL = "install"
    VERIFY_BOOT = "verify_boot"
    COMMIT = "commit"
    ROLLBACK = "rollback"


class UpdateRejected(Exception):
    """A release this robot must not install; the reason is reported and the release not retried."""


@dataclass
class AgentState:
    state: str = S.IDLE.value
    committed_release: int = 0
    active_slot: str | None = None
    pending_release: int | None = None
    trial_slot: str | None = None
    boot_attempts: int = 0
    deferrals: int = 0
    rejected: dict = field(default_factory=dict)  # str(release) -> reason
    last_error: str = ""
    history: list = field(default_factory=list)  # [(release, outcome)], newest last (bounded)


def crashpoint(label: str) -> None:
    """Tests' kill -9: the process kills itself at the point named by ACADEMY_AGENT_CRASH_AT."""
    if os.environ.get("ACADEMY_AGENT_CRASH_AT") == label:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes, label: str = "") -> None:
    """Write, fsync, rename into place, fsync the folder: after a power cut the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if label:
            crashpoint(f"{label}:half-written")
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in sorted({p.parent for p in root.rglob("*")} | {root}, key=lambda x: -len(x.parts)):
        fsync_dir(d)


class Transport:
    """How the agent reaches the update server: TUF through ngclient, chunks and reports over HTTP."""

    def __init__(self, url: str, timeout: float = 30.0):
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)

    def updater(self, cache: Path, bootstrap: bytes | None):
        from tuf.ngclient import Updater

        (cache / "metadata").mkdir(parents=True, exist_ok=True)
        (cache / "targets").mkdir(parents=True, exist_ok=True)
        return Updater(str(cache / "metadata"), f"{self.url}/tuf/metadata/", str(cache / "targets"),
                       f"{self.url}/tuf/targets/", bootstrap=bootstrap)

    def chunk(self, digest: str, limit: int) -> bytes:
        """A chunk's bytes, reading at most ``limit`` + 1 (an endless answer is cut off)."""
        with self.http.stream("GET", f"{self.url}/chunks/{digest}") as r:
            if r.status_code != 200:
                raise UpdateRejected(f"chunk {digest} not served (HTTP {r.status_code})")
            data = b""
            for block in r.iter_bytes():
                data += block
                if len(data) > limit:
                    raise UpdateRejected(f"chunk {digest} is longer than the manifest's chunk size {limit}")
        return data

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(f"{self.url}{path}", json=body)
        r.raise_for_status()
        return r.json()


def default_boot_check(slot: Path, profile: str, self_test_steps: int | None = None) -> str | None:
    """VERIFY_BOOT's checks on a slot: None if it may be committed, else the reason.

    The policy loads; its p99 over 200 ``act`` calls (batch 1, one thread, after 20 to warm up;
    the best of up to three rounds) is within the hardware profile's budget; one self-test episode (handover, seed 0, nominal simulation) runs
    ``self_test_steps`` steps (the whole episode by default) without crossing the bundle's
    safety limits.
    """
    import numpy as np
    import torch

    from academy.exam.profiles import profile as hardware
    from academy.exam.safety import KINDS, SafetyLimits
    from academy.learn.policy import Policy, env_obs_batch
    from academy.sim.env import WorkcellEnv

    torch.set_num_threads(1)
    try:
        policy = Policy.load(slot / "policy")
    except Exception as e:  # noqa: BLE001 - any failure to load is a failed boot
        return f"the policy does not load: {type(e).__name__}: {e}"
    limits = SafetyLimits.load(slot / "safety_limits.json")
    skills = json.loads((slot / "skills.json").read_text())
    env = WorkcellEnv(skills[0]["name"] if skills else policy.tasks[0])
    env.enable_safety(limits)
    obs, _ = env.reset(0)
    batch = env_obs_batch([obs])
    policy.reset(1)
    for _ in range(20):  # warm-up, then the latency the profile budgets: p99 of 200 calls
        policy.act(batch)
    budget = hardware(profile).latency_p99_ms
    rounds = []
    for _ in range(3):  # the best of three rounds: a transient stall is not a slow policy
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            policy.act(batch)
            times.append(time.perf_counter() - t0)
        rounds.append(float(np.percentile(np.array(times) * 1e3, 99)))
        if rounds[-1] <= budget:
            break
    if min(rounds) > budget:
        return f"inference p99 {min(rounds):.2f} ms (best of 3 rounds) is over the {profile} budget of {budget} ms"
    policy.reset(1)
    steps = self_test_steps if self_test_steps is not None else env.max_steps
    for _ in range(steps):
        action = policy.act(env_obs_batch([obs]))[0]
        if not np.all(np.isfinite(action)):
            return "the policy produced a non-finite action in the self-test"
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    log = env.safety_log()[-1]
    crossed = {k: log[k] for k in KINDS if log[k]}
    if crossed:
        return f"the self-test episode crossed safety limits: {crossed}"
    return None


class Agent:
    def __init__(self, root: str | Path, serial: str, profile: str, transport: Transport,
                 boot_check: Callable[[Path, str], str | None] | None = None):
        self.root = Path(root)
        self.serial, self.profile = serial, profile
        self.transport = transport
        self.boot_check = boot_check or default_boot_check
        self.state_path = self.root / "state.json"
        self.st = self._load()
        self.shadow_offer: int | None = None  # the release the server last asked this robot to run in shadow

    # ------------------------------------------------------------------ provisioning and state
    @classmethod
    def provision(cls, root: str | Path, trusted_root: bytes) -> None:
        """A new robot: the embedded root of trust, two empty slots, the initial state."""
        root = Path(root)
        (root / "trust").mkdir(parents=True, exist_ok=True)
        write_durable(root / "trust" / "root.json", trusted_root)
        for slot in SLOTS:
            (root / "slots" / slot).mkdir(parents=True, exist_ok=True)
        (root / "chunks").mkdir(exist_ok=True)
        if not (root / "state.json").exists():
            write_durable(root / "state.json", json.dumps(asdict(AgentState())).encode())

    def _load(self) -> AgentState:
        if not self.state_path.exists():
            raise FileNotFoundError(f"{self.root} is not a provisioned robot: state.json missing")
        try:
            return AgentState(**json.loads(self.state_path.read_text()))
        except (json.JSONDecodeError, TypeError) as e:  # never half-written (rename), so this is damage
            raise RuntimeError(f"{self.state_path} is damaged: {e}") from None

    def _save(self, label: str = "") -> None:
        write_durable(self.state_path, json.dumps(asdict(self.st), indent=1).encode(), label)

    def _go(self, state: S, label: str = "", **changes) -> None:
        for k, v in changes.items():
            setattr(self.st, k, v)
        self.st.state = state.value
        self._save(label)

    @property
    def current(self) -> Path:
        return self.root / "current"

    def slot_dir(self, slot: str) -> Path:
        return self.root / "slots" / slot

    def inactive_slot(self) -> str:
        return "b" if self.st.active_slot == "a" else "a"

    # ------------------------------------------------------------------ the loop
    def step(self, charging: bool, battery: float = 1.0) -> str:
        """Do the current state's work once; returns the new state's name."""
        state = S(self.st.state)
        try:
            getattr(self, f"_{state.value}")(charging, battery)
        except UpdateRejected as e:
            self._reject(str(e))
        return self.st.state

    def run_until_idle(self, charging: bool = True, battery: float = 1.0, max_steps: int = 50) -> str:
        """Step until the agent is back in IDLE or waits for a charger it does not have."""
        for _ in range(max_steps):
            state = self.step(charging, battery)
            if state == S.IDLE.value or (state == S.WAIT_FOR_CHARGING.value and not charging):
                return state
        raise RuntimeError(f"agent {self.serial} did not settle in {max_steps} steps (state {self.st.state})")

    def checkin(self, battery: float, charging: bool) -> dict:
        return self.transport.post("/v1/checkin", {
            "serial": self.serial, "profile": self.profile, "installed_release": self.st.committed_release,
            "slot_state": {"active": self.st.active_slot, "trial": self.st.trial_slot,
                           "boot_attempts": self.st.boot_attempts, "deferrals": self.st.deferrals},
            "agent_state": self.st.state, "battery": battery, "charging": charging})

    def report(self, release: int, ok: bool, detail: str = "") -> None:
        try:
            self.transport.post("/v1/health", {"serial": self.serial, "release": release, "kind": "install",
                                               "ok": ok, "detail": detail[:500]})
        except Exception:  # noqa: BLE001 - a report lost to a network fault is not an install failure
            pass

    # ------------------------------------------------------------------ states
    def _idle(self, charging: bool, battery: float) -> None:
        answer = self.checkin(battery, charging)
        self.shadow_offer = answer.get("shadow")
        release = answer.get("release")
        if release and release > self.st.committed_release and str(release) not in self.st.rejected:
            self._go(S.DOWNLOAD, pending_release=int(release), deferrals=0, last_error="")

    def _download(self, charging: bool, battery: float) -> None:
        release = self.st.pending_release
        manifest = self.fetch_manifest(release)
        staged = self.root / "downloads" / f"{release}.manifest.json"
        staged.parent.mkdir(exist_ok=True)
        write_durable(staged, json.dumps(manifest).encode())  # verified: INSTALL needs no network
        self._fetch_chunks(manifest)
        self._go(S.WAIT_FOR_CHARGING, "download:to-wait")

    def _fetch_chunks(self, manifest: dict) -> None:
        """Every chunk the manifest names, into the chunk store, each checked against its sha256."""
        release = manifest["release"]
        store = self.root / "chunks"
        limit = manifest["chunk_size"]
        for name, f in manifest["files"].items():
            for digest in f["chunks"]:
                path = store / digest[:2] / digest
                if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                    continue  # already here: resumed download, or shared with an installed release
                data = self.transport.chunk(digest, limit)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise UpdateRejected(f"release {release}: a chunk of {name} does not match the signed manifest "
                                         f"(got {hashlib.sha256(data).hexdigest()[:16]}, expected {digest[:16]})")
                path.parent.mkdir(parents=True, exist_ok=True)
                write_durable(path, data, "download:chunk")
                crashpoint("download:after-chunk")

    def prepare_shadow(self, release: int) -> Path:
        """The bundle of ``release`` in ``shadow/``, verified through TUF like an install, for the runtime to
        run beside the committed policy without acting; nothing of the update state changes.
        Raises ``UpdateRejected`` if the release may not run here."""
        dest = self.root / "shadow"
        m = dest / "manifest.json"
        if m.exists() and json.loads(m.read_text()).get("release") == release:
            verify_bundle(dest)
            return dest
        manifest = self.fetch_manifest(release)
        self._fetch_chunks(manifest)
        try:
            return assemble(manifest, self.root / "chunks", dest)  # whole or not at all
        except BundleError as e:
            raise UpdateRejected(f"release {release}: {e}") from e

    def fetch_manifest(self, release: int) -> dict:
        """The manifest of ``release`` through ngclient from the embedded root; checks what it may be."""
        from tuf.api.exceptions import DownloadError, RepositoryError

        cache = self.root / "tuf"
        has_cache = (cache / "metadata" / "root.json").exists()
        try:
            updater = self.transport.updater(cache, None if has_cache else (self.root / "trust/root.json").read_bytes())
            updater.refresh()
            info = updater.get_targetinfo(manifest_target_path(release))
            if info is None:
                raise UpdateRejected(f"release {release} is not a signed target of the update server")
            custom = info.custom or {}
            if custom.get("release") != release:
                raise UpdateRejected(f"the signed target for release {release} says release {custom.get('release')}")
            if self.profile not in custom.get("hardware_profiles", []):
                raise UpdateRejected(f"release {release} is for {custom.get('hardware_profiles')}, not this robot's "
                                     f"{self.profile}")
            path = updater.find_cached_target(info) or updater.download_target(info)
        except (RepositoryError, DownloadError) as e:
            raise UpdateRejected(f"release {release}: the update repository does not verify: "
                                 f"{type(e).__name__}: {e}") from e
        manifest = json.loads(Path(path).read_bytes())
        try:
            check_manifest(manifest)
        except BundleError as e:
            raise UpdateRejected(str(e)) from e
        if manifest["release"] != release or manifest["release"] <= self.st.committed_release:
            raise UpdateRejected(f"manifest release {manifest['release']} is not the pending {release} above the "
                                 f"committed {self.st.committed_release}")
        if self.profile not in manifest.get("hardware_profiles", []):
            raise UpdateRejected(f"release {release}'s manifest does not list {self.profile}")
        total = sum(f["length"] for f in manifest["files"].values())
        if total > MAX_BUNDLE_BYTES:
            raise UpdateRejected(f"release {release} names {total} bytes, over the {MAX_BUNDLE_BYTES} limit")
        return manifest

    def _wait_for_charging(self, charging: bool, battery: float) -> None:
        if charging:
            self._go(S.INSTALL, "wait:to-install", trial_slot=self.inactive_slot())
        else:
            self.st.deferrals += 1  # counted and reported at check-in; it never installs on its own
            self._save()
            self.checkin(battery, charging)

    def _install(self, charging: bool, battery: float) -> None:
        release, slot = self.st.pending_release, self.st.trial_slot
        manifest = json.loads((self.root / "downloads" / f"{release}.manifest.json").read_text())
        dest = self.slot_dir(slot)
        crashpoint("install:before-assemble")
        try:
            assemble(manifest, self.root / "chunks", dest)
        except BundleError as e:
            raise UpdateRejected(f"release {release}: {e}") from e
        crashpoint("install:after-assemble")
        fsync_tree(dest)
        self._go(S.VERIFY_BOOT, "install:to-verify", boot_attempts=0)

    def _verify_boot(self, charging: bool, battery: float) -> None:
        release, slot = self.st.pending_release, self.st.trial_slot
        self.st.boot_attempts += 1
        self._save("verify:attempt")
        if self.st.boot_attempts > MAX_BOOT_ATTEMPTS:
            self._go(S.ROLLBACK, last_error=f"release {release} did not boot in {MAX_BOOT_ATTEMPTS} attempts")
            return
        crashpoint("verify:booting")
        dest = self.slot_dir(slot)
        try:
            verify_bundle(dest)
            problem = self.boot_check(dest, self.profile)
        except BundleError as e:
            problem = str(e)
        if problem:
            self._go(S.ROLLBACK, "verify:to-rollback", last_error=f"release {release}: {problem}")
        else:
            self._go(S.COMMIT, "verify:to-commit")

    def _commit(self, charging: bool, battery: float) -> None:
        release, slot = self.st.pending_release, self.st.trial_slot
        link = self.root / "current.new"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(Path("slots") / slot, link)
        crashpoint("commit:before-switch")
        os.replace(link, self.current)  # the atomic switch
        fsync_dir(self.root)
        crashpoint("commit:after-switch")
        self.st.history = (self.st.history + [[release, "committed"]])[-20:]
        self._go(S.IDLE, "commit:to-idle", committed_release=release, active_slot=slot, pending_release=None,
                 trial_slot=None, boot_attempts=0, deferrals=0)
        self._prune()
        self.report(release, True)

    def _rollback(self, charging: bool, battery: float) -> None:
        release = self.st.pending_release
        # the committed slot was never touched; make sure `current` names it (a crash may have left
        # current.new behind) and leave the trial slot's contents to be replaced by the next install
        link = self.root / "current.new"
        if link.is_symlink() or link.exists():
            link.unlink()
        if self.st.active_slot and os.readlink(self.current) != str(Path("slots") / self.st.active_slot):
            os.symlink(Path("slots") / self.st.active_slot, link)
            os.replace(link, self.current)
            fsync_dir(self.root)
        crashpoint("rollback:before-state")
        reason = self.st.last_error or f"release {release} rolled back"
        self.st.rejected[str(release)] = reason
        self.st.history = (self.st.history + [[release, "rolled back"]])[-20:]
        self._go(S.IDLE, "rollback:to-idle", pending_release=None, trial_slot=None, boot_attempts=0)
        self.report(release, False, reason)

    def _reject(self, reason: str) -> None:
        release = self.st.pending_release
        if self.st.state in (S.INSTALL.value, S.VERIFY_BOOT.value):
            self._go(S.ROLLBACK, last_error=reason)
            return
        if release is not None:
            self.st.rejected[str(release)] = reason
            self.st.history = (self.st.history + [[release, "rejected"]])[-20:]
        self._go(S.IDLE, pending_release=None, trial_slot=None, last_error=reason)
        if release is not None:
            self.report(release, False, reason)

    def _prune(self) -> None:
        """Keep the chunks of the two slots' releases (the next delta's base); drop the rest."""
        keep = set()
        for slot in SLOTS:
            m = self.slot_dir(slot) / "manifest.json"
            if m.exists():
                for f in json.loads(m.read_text())["files"].values():
                    keep.update(f["chunks"])
        for path in (self.root / "chunks").glob("*/*"):
            if path.name not in keep:
                path.unlink()
        for path in (self.root / "downloads").glob("*.manifest.json"):
            path.unlink()

    # ------------------------------------------------------------------ what the robot runs
    def running(self) -> tuple[int, Path | None]:
        """(committed release, the folder of the bundle the robot runs) after verifying it."""
        if not self.current.is_symlink():
            return 0, None
        slot = self.current.resolve()
        verify_bundle(slot)
        release = json.loads((slot / "manifest.json").read_text())["release"]
        return release, slot

