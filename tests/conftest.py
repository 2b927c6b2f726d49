import os

os.environ.setdefault("MUJOCO_GL", "egl")

import glob
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """A small real policy: two handover demonstrations, 60 training steps (exam and release tests)."""
    from academy.data.collect import collect
    from academy.learn.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_policy")
    collect("handover", 2, root / "ds", workers=1)
    train(root / "ds", root / "policy", TrainConfig(max_steps=60, max_minutes=1, batch_size=32, hidden=32, layers=1, threads=1))
    return root / "policy"


@pytest.fixture(scope="session")
def real_exam(tiny_policy):
    from academy.exam.exam import ExamConfig, run_exam

    return run_exam(str(tiny_policy), ["handover"], ExamConfig(episodes=1, reality_episodes=0, latency_calls=50))


@pytest.fixture(scope="session")
def exam_report(real_exam):
    """The tiny policy (60 training steps) flails: its real exam crosses safety limits and the gate
    refuses it (test_the_gate_refuses_the_tiny_policy). The release mechanics are tested on the same
    report with its safety counts cleared."""
    import json

    from academy.exam.safety import KINDS

    report = json.loads(json.dumps(real_exam))
    for skill in report["skills"].values():
        skill["safety"] = {k: (0 if k in KINDS else v) for k, v in skill["safety"].items()} | {"worst": {}}
    return report


@pytest.fixture(scope="session")
def shipped_policies(tmp_path_factory):
    """The two real handover policies of tests/assets/policies as full checkpoint folders (exports made
    here): ``handover-enc`` (demos under randomized encoder offsets) and ``handover-plain``."""
    import json

    from academy.learn.checkpoint import load_model, save_checkpoint

    assets = Path(__file__).parent / "assets" / "policies"
    root = tmp_path_factory.mktemp("shipped")
    return {name: save_checkpoint(root / name, load_model(assets / name), json.loads((assets / name / "train.json").read_text()))
            for name in ("handover-enc", "handover-plain")}


# A real PostgreSQL server for the registry and fleet-database tests, started from Debian's postgresql package.
#
# The server runs from a fresh data folder on a free loopback port and is stopped (by its own
# pg_ctl, our process only) when the session ends. Where it cannot start, the tests that need
# it are skipped with the reason, which pytest prints (-rs).

def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it): "
                    "the registry's PostgreSQL test did not run")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]'): the PostgreSQL test did not run")
    root = Path(tempfile.mkdtemp(prefix="academy-pg-"))
    data, log = root / "data", root / "log"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the package's postgres user
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run(as_user + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not start here ({e}; {detail.decode(errors='replace')[-300:]}): "
                    "the registry's PostgreSQL test did not run")
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE academy")
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/academy"
    subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each database Academy supports: a SQLite file, and the real PostgreSQL server (a fresh
    database per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'academy.db'}"
    import psycopg

    base = request.getfixturevalue("postgres_url")
    name = f"t{abs(hash(request.node.nodeid)) % 10**9}"
    admin = base.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + f"/{name}"
