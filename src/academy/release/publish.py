"""From a policy to a signed release: exam, gate, bundle, sign, register.

``ReleaseHome(home, db_url)`` ties together a release home folder (keys, TUF repository, chunk
store, staged bundles) and the registry database. ``publish`` examines a candidate policy (or
takes an exam report already made), gates it against the current release and every skill ever
mastered, and only if it passes builds the bundle, stores its chunks, signs its manifest as a
TUF target and records the release. A refused candidate is recorded in the registry's exams
table with the gate's reasons, and ``GateRefused`` carries them to the caller.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from academy.exam.exam import ExamConfig, run_exam
from academy.exam.gate import GateDecision, gate, newly_mastered
from academy.release.bundle import assemble, build_bundle, delta, store_chunks, verify_bundle
from academy.release.registry import Registry, ReleaseError, _lean, default_url
from academy.release.signing import SigningRepo, TufVerifier, directory_url, manifest_target_path

DEFAULT_HOME = Path("academy-data/releases")


class GateRefused(RuntimeError):
    def __init__(self, decision: GateDecision, against: int | None, report: dict | None = None):
        self.decision, self.report = decision, report
        where = f"against release {against}" if against else "(first release)"
        super().__init__(f"the release gate refused the candidate {where}:\n  - " + "\n  - ".join(decision.reasons))


@dataclass
class Published:
    release: int
    manifest: dict
    decision: GateDecision
    delta: dict
    exam: dict


class ReleaseHome:
    def __init__(self, home: str | Path = DEFAULT_HOME, db_url: str | None = None):
        self.home = Path(home)
        self.db_url = db_url or os.environ.get("ACADEMY_DB_URL") or default_url(self.home)
        self.signing = SigningRepo(self.home)
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.db_url)
        return self._registry

    def init(self) -> dict[str, str]:
        keyids = self.signing.init()
        self.registry  # creates the tables
        return keyids

    def require_init(self) -> None:
        if not self.signing.initialized:
            raise ReleaseError(f"{self.home} has no signed repository: run `academy release init --home {self.home}`")

    def bundle_dir(self, release: int) -> Path:
        return self.home / "bundles" / str(release)

    # ------------------------------------------------------------------ exam and gate
    def examine(self, policy: str, cfg: ExamConfig | None = None, on_episodes=None) -> tuple[dict, GateDecision, int | None]:
        """Exam ``policy`` on its skills and every mastered one; gate it against the current release."""
        reg = self.registry
        mastered = reg.mastered()
        from academy.learn.checkpoint import trained_tasks

        skills = list(dict.fromkeys(trained_tasks(policy) + mastered))
        report = run_exam(policy, skills, cfg, on_episodes=on_episodes)
        return (report, *self.judge(report))

    def judge(self, report: dict) -> tuple[GateDecision, int | None]:
        current = self.registry.current()
        decision = gate(report, current["exam"] if current else None, self.registry.mastered(),
                        current_name=f"release {current['number']}" if current else "")
        return decision, (current["number"] if current else None)

    # ------------------------------------------------------------------ publish
    def bundle_exam(self, release: int) -> dict:
        """The exam report a release's bundle carries (the registry keeps a lean copy)."""
        path = self.bundle_dir(release) / "exam.json"
        return json.loads(path.read_text()) if path.exists() else self.registry.get(release)["exam"]

    def planner_of(self, release: int | None) -> Path | None:
        """The planner folder a release's bundle carries, if any."""
        folder = self.bundle_dir(release) / "planner" if release else None
        return folder if folder is not None and (folder / "planner.json").exists() else None

    def publish(self, policy: str, exam: dict | None = None, cfg: ExamConfig | None = None, note: str = "",
                on_episodes=None, planner: str | Path | None = None) -> Published:
        """``planner``: a planner folder that passed its own exam; without it the current release's
        planner (if any) is carried over unchanged."""
        self.require_init()
        if planner is not None:
            from academy.command.exam import passed_exam

            passed_exam(planner)  # refused before the policy's exam is spent
        reg = self.registry
        if exam is None:
            exam, decision, against = self.examine(policy, cfg, on_episodes)
        else:
            decision, against = self.judge(exam)
        if not decision.passed:
            reg.record_exam(exam, False, decision.reasons, against)
            raise GateRefused(decision, against, exam)
        pub = self._release(policy, exam, decision.to_dict(), against, note, planner or self.planner_of(against))
        reg.record_exam(exam, True, [], against, release=pub.release)
        reg.master(newly_mastered(exam), pub.release)
        return Published(pub.release, pub.manifest, decision, pub.delta, exam)

    def republish(self, previous: int, note: str) -> int:
        """A new, higher release carrying release ``previous``'s bundle (a rollback); returns its number.

        No exam and no gate: these are the weights, skills and limits that passed as ``previous``.
        """
        self.require_init()
        pub = self._release(str(self.bundle_dir(previous) / "policy"), self.bundle_exam(previous),
                            {"passed": True, "rollback_of": previous}, self.registry.last_number() or None, note,
                            self.planner_of(previous))
        return pub.release

    def publish_planner(self, planner: str | Path, note: str = "") -> Published:
        """A new release with a new planner and the current release's policy, unchanged: the planner
        updates on its own. Its gate is the planner's own exam (and, for a policy trained with
        instructions, the same instruction vectors); the policy's exam stands as it was."""
        from academy.command.exam import passed_exam

        self.require_init()
        current = self.registry.current()
        if current is None:
            raise ReleaseError("no release yet: a planner ships beside a policy, so publish a policy first")
        report = passed_exam(planner)
        return self._release(str(self.bundle_dir(current["number"]) / "policy"), self.bundle_exam(current["number"]),
                             {"passed": True, "planner_update_of": current["number"], "planner_exam": {
                                 "accuracy": report["accuracy"], "p99_ms": report["latency_ms"]["p99"]}},
                             current["number"], note, planner)

    def _release(self, policy: str, exam: dict, gate_record: dict, parent: int | None, note: str,
                 planner: str | Path | None = None) -> Published:
        reg = self.registry
        number = reg.last_number() + 1
        out = self.bundle_dir(number)
        if planner is not None and Path(planner).resolve().is_relative_to(out.resolve()):
            raise ReleaseError(f"the planner {planner} lies inside the bundle being built")
        manifest = build_bundle(policy, exam, number, parent, out, planner_dir=planner)
        store_chunks(out, manifest, self.signing.chunks_dir)
        manifest_bytes = (out / "manifest.json").read_bytes()
        info = self.signing.add_target(manifest_target_path(number), manifest_bytes,
                                       {"release": number, "hardware_profiles": manifest["hardware_profiles"]})
        parent_manifest = reg.get(parent)["manifest"] if parent else None
        d = delta(manifest, parent_manifest)
        reg.add_release(number, parent, manifest["policy_sha256"], info.hashes["sha256"],
                        manifest["hardware_profiles"], manifest, _lean(exam), gate_record | {"delta": d}, note)
        return Published(number, manifest, GateDecision(True), d, exam)

    # ------------------------------------------------------------------ verify
    def verify(self, release: int, trusted_root: bytes | None = None, dest: str | Path | None = None) -> dict:
        """Fetch release ``release`` as a robot would: the manifest through TUF from the trusted root,
        then every chunk, each file checked against the signed manifest. Returns a summary."""
        self.require_init()
        root = trusted_root or self.signing.trusted_root()
        cache = self.home / "verify-cache"
        verifier = TufVerifier(directory_url(self.signing.repo), cache, root)
        manifest, info = verifier.manifest(release)
        dest = Path(dest) if dest else cache / "bundles" / str(release)
        assemble(manifest, self.signing.chunks_dir, dest)
        verify_bundle(dest, manifest)
        return {"release": release, "manifest_sha256": info.hashes["sha256"], "files": len(manifest["files"]),
                "bytes": sum(f["length"] for f in manifest["files"].values()), "bundle": str(dest),
                "hardware_profiles": (info.custom or {}).get("hardware_profiles")}

