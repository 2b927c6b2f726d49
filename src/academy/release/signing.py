"""The signed update repository: TUF metadata over bundle manifests, with python-tuf.

Layout under a release home (``academy release init`` makes it):

- ``keys/<role>.pem``: one ed25519 private key per top-level role (root, targets, snapshot,
  timestamp), made by securesystemslib's ``CryptoSigner``. A development key set: in
  production the root and targets keys stay offline (docs/release.md).
- ``repo/metadata/``: ``N.root.json``, ``N.targets.json``, ``N.snapshot.json`` (consistent
  snapshots) and ``timestamp.json``, written with python-tuf's Metadata API.
- ``repo/targets/bundles/<release>/<sha256>.manifest.json``: one TUF target per bundle
  manifest, with custom fields ``release`` and ``hardware_profiles``.
- ``repo/chunks/``: the bundles' content-addressed chunks, which the signed manifest names.

``TufVerifier`` is the client side: python-tuf's ngclient ``Updater`` over a fetcher that reads
the repository folder (the update server of the deploy stage serves the same files over HTTP),
starting from a trusted root given to it (a robot gets its root at provisioning).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import DownloadError, DownloadHTTPError, RepositoryError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

ROLES = ("root", "targets", "snapshot", "timestamp")
EXPIRY_DAYS = {"root": 365, "targets": 90, "snapshot": 30, "timestamp": 7}
SERIALIZER = JSONSerializer(compact=False)


class SigningError(RuntimeError):
    """The signing keys or the repository are missing or do not agree."""


def manifest_target_path(release: int) -> str:
    return f"bundles/{release}/manifest.json"


def _expires(role: str) -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=EXPIRY_DAYS[role])


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class SigningRepo:
    """The repository side: keys, metadata and targets under ``home``."""

    def __init__(self, home: str | Path):
        self.home = Path(home)
        self.keys_dir = self.home / "keys"
        self.repo = self.home / "repo"
        self.metadata_dir = self.repo / "metadata"
        self.targets_dir = self.repo / "targets"
        self.chunks_dir = self.repo / "chunks"

    # ------------------------------------------------------------------ set-up
    @property
    def initialized(self) -> bool:
        return (self.metadata_dir / "1.root.json").exists()

    def init(self) -> dict[str, str]:
        """A development key set and version-1 metadata; refused if the repository exists."""
        if self.initialized:
            raise SigningError(f"{self.repo} already holds a TUF repository (delete it to start over)")
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        signers = {}
        for role in ROLES:
            signer = CryptoSigner.generate_ed25519()
            path = self.keys_dir / f"{role}.pem"
            _atomic_write(path, signer.private_bytes)
            os.chmod(path, 0o600)
            signers[role] = signer
        root = Root(expires=_expires("root"), consistent_snapshot=True)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        targets = Targets(expires=_expires("targets"))
        snapshot = Snapshot(expires=_expires("snapshot"))
        timestamp = Timestamp(expires=_expires("timestamp"))
        snapshot.meta["targets.json"] = MetaFile(version=targets.version)
        timestamp.snapshot_meta = MetaFile(version=snapshot.version)
        for role, signed in (("root", root), ("targets", targets), ("snapshot", snapshot), ("timestamp", timestamp)):
            self._write(Metadata(signed), signers[role])
        return {role: s.public_key.keyid for role, s in signers.items()}

    def signer(self, role: str) -> CryptoSigner:
        path = self.keys_dir / f"{role}.pem"
        if not path.exists():
            raise SigningError(f"no {role} key at {path}: run `academy release init`, or bring the offline key")
        key = load_pem_private_key(path.read_bytes(), password=None)
        signer = CryptoSigner(key)
        root = self.load("root").signed
        if signer.public_key.keyid not in root.roles[role].keyids:
            raise SigningError(f"the key in {path} is not a {role} key of this repository's root")
        return signer

    # ------------------------------------------------------------------ metadata
    def load(self, role: str) -> Metadata:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        versions = sorted(int(p.name.split(".")[0]) for p in self.metadata_dir.glob(f"*.{role}.json"))
        if not versions:
            raise SigningError(f"no {role} metadata in {self.metadata_dir}: run `academy release init`")
        return Metadata.from_file(str(self.metadata_dir / f"{versions[-1]}.{role}.json"))

    def _write(self, md: Metadata, signer: CryptoSigner) -> None:
        md.signatures.clear()
        md.sign(signer)
        role = md.signed.type
        name = "timestamp.json" if role == "timestamp" else f"{md.signed.version}.{role}.json"
        _atomic_write(self.metadata_dir / name, md.to_bytes(SERIALIZER))

    def add_target(self, path: str, data: bytes, custom: dict) -> TargetFile:
        """Publish ``data`` as target ``path`` and sign new targets, snapshot and timestamp."""
        targets = self.load("targets")
        info = TargetFile.from_data(path, data, ["sha256"])
        info.unrecognized_fields["custom"] = custom
        digest = info.hashes["sha256"]
        dest = self.targets_dir / Path(path).parent / f"{digest}.{Path(path).name}"
        _atomic_write(dest, data)
        targets.signed.targets[path] = info
        targets.signed.version += 1
        targets.signed.expires = _expires("targets")
        self._write(targets, self.signer("targets"))
        self._resign_snapshot_and_timestamp(targets.signed.version)
        return info

    def _resign_snapshot_and_timestamp(self, targets_version: int) -> None:
        snapshot = self.load("snapshot")
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
        snapshot.signed.version += 1
        snapshot.signed.expires = _expires("snapshot")
        self._write(snapshot, self.signer("snapshot"))
        self.refresh_timestamp()

    def refresh_timestamp(self) -> None:
        """Re-sign the timestamp (it expires first: a server re-signs it on a schedule)."""
        snapshot_version = self.load("snapshot").signed.version
        timestamp = self.load("timestamp")
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot_version)
        timestamp.signed.version += 1
        timestamp.signed.expires = _expires("timestamp")
        self._write(timestamp, self.signer("timestamp"))

    def trusted_root(self) -> bytes:
        """Version 1 of root: what a robot is given at provisioning."""
        return (self.metadata_dir / "1.root.json").read_bytes()


class DirectoryFetcher(FetcherInterface):
    """ngclient's network layer over a local folder (``file://`` URLs)."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(unquote(urlparse(url).path))
        if not path.is_file():
            raise DownloadHTTPError(f"{path} not found", 404)
        with open(path, "rb") as f:
            while block := f.read(1 << 16):
                yield block


class TufVerifier:
    """The client side: verify a release's manifest through python-tuf's ngclient from a trusted root."""

    def __init__(self, repo_url: str, cache_dir: str | Path, trusted_root: bytes, fetcher: FetcherInterface | None = None):
        self.cache = Path(cache_dir)
        (self.cache / "metadata").mkdir(parents=True, exist_ok=True)
        (self.cache / "targets").mkdir(parents=True, exist_ok=True)
        base = repo_url.rstrip("/")
        self.updater = Updater(str(self.cache / "metadata"), f"{base}/metadata/", str(self.cache / "targets"),
                               f"{base}/targets/", fetcher=fetcher or DirectoryFetcher(), bootstrap=trusted_root)

    def manifest(self, release: int) -> tuple[dict, TargetFile]:
        """The verified manifest of ``release`` and its TUF target info; raises SigningError."""
        try:
            self.updater.refresh()
            info = self.updater.get_targetinfo(manifest_target_path(release))
            if info is None:
                raise SigningError(f"release {release} is not a signed target of the repository")
            path = self.updater.download_target(info)
        except (RepositoryError, DownloadError) as e:
            raise SigningError(f"the repository's metadata does not verify: {type(e).__name__}: {e}") from e
        custom = info.custom or {}
        if custom.get("release") != release:
            raise SigningError(f"target {info.path} claims release {custom.get('release')}, not {release}")
        manifest = json.loads(Path(path).read_bytes())
        if manifest.get("release") != release:
            raise SigningError(f"the manifest of release {release} says release {manifest.get('release')}")
        return manifest, info


def directory_url(path: str | Path) -> str:
    return Path(path).resolve().as_uri()
