import json
import shutil

import pytest
from typer.testing import CliRunner

from academy.cli import app
from academy.practice.residual import ResidualActorCritic, default_scale, feature_dim, save_residual
from academy.release.bundle import (BundleError, assemble, build_bundle, chunk_path, delta, load_manifest,
                                    store_chunks, verify_bundle)
from academy.release.publish import GateRefused, ReleaseHome
from academy.release.registry import Registry, ReleaseError
from academy.release.signing import SigningError, SigningRepo, TufVerifier, directory_url


def test_the_gate_refuses_the_tiny_policy(tiny_policy, real_exam, tmp_path):
    home = ReleaseHome(tmp_path / "rel")
    home.init()
    with pytest.raises(GateRefused, match="handover: safety limit"):
        home.publish(str(tiny_policy), real_exam)
    assert home.registry.last_number() == 0 and home.registry.exams()[0]["passed"] is False


def practiced(base, dest):
    """A practice fine-tune of ``base``: its files and a (real, small) residual."""
    from academy.learn.policy import Policy

    shutil.copytree(base, dest, dirs_exist_ok=True)
    cfg = Policy.load(base).cfg
    net = ResidualActorCritic(feature_dim(len(cfg.tasks), cfg.obs_dims), len(cfg.tasks), default_scale("hands"), hidden=16)
    save_residual(dest, net)
    return dest


# ---------------------------------------------------------------- registry
def registry_contract(reg: Registry):
    assert reg.current() is None and reg.last_number() == 0
    args = dict(policy_sha256="a" * 64, manifest_sha256="b" * 64, profiles=["ah1-cm3"], manifest={"release": 1},
                exam={"skills": {}}, gate={"passed": True})
    reg.add_release(1, None, **args)
    reg.add_release(2, 1, **args)
    with pytest.raises(ReleaseError, match="release number 2 is not above the last release \\(2\\)"):
        reg.add_release(2, 1, **args)
    with pytest.raises(ReleaseError, match="not above"):
        reg.add_release(1, None, **args)
    with pytest.raises(ReleaseError, match="parent release 7 is not in the registry"):
        reg.add_release(3, 7, **args)
    reg.add_release(5, 2, **args)  # numbers may skip; they only go up
    assert [r["number"] for r in reg.lineage(5)] == [5, 2, 1]
    assert reg.current()["number"] == 5 and reg.get(2)["parent"] == 1
    assert reg.master(["handover"], 1) == ["handover"]
    assert reg.master(["handover", "place_part"], 2) == ["place_part"]  # once mastered, kept with its first release
    assert reg.mastered() == ["handover", "place_part"]
    eid = reg.record_exam({"policy": "p", "skills": {}, "episodes": [1, 2]}, False, ["a reason"], 5)
    assert reg.exams()[-1] == {**reg.exams()[-1], "id": eid, "passed": False, "reasons": ["a reason"], "against": 5}
    with pytest.raises(ReleaseError, match="no release 4"):
        reg.get(4)


def test_registry_on_sqlite_and_a_real_postgresql_server(database_url):
    reg = Registry(database_url)
    assert reg.engine.dialect.name == database_url.split(":")[0].split("+")[0]
    registry_contract(reg)
    reg.close()


# ---------------------------------------------------------------- bundles and deltas
def test_bundle_names_every_file_by_hash_and_refuses_tampering(tiny_policy, exam_report, tmp_path):
    m = build_bundle(tiny_policy, exam_report, 1, None, tmp_path / "b")
    assert {"policy/weights.pt", "policy/model.onnx", "policy/config.json", "skills.json", "calibration.json",
            "safety_limits.json", "hardware_profiles.json", "exam.json"} <= set(m["files"])
    assert m["release"] == 1 and m["parent"] is None and m["skills"] == ["handover"]
    assert json.loads((tmp_path / "b/skills.json").read_text())[0]["required_hardware"]["arms"] == ["right", "left"]
    assert verify_bundle(tmp_path / "b") == m
    w = tmp_path / "b/policy/weights.pt"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="file policy/weights.pt has sha256 .*, the manifest says"):
        verify_bundle(tmp_path / "b")
    w.write_bytes(bytes(data[:-5]))
    with pytest.raises(BundleError, match="policy/weights.pt has .* bytes, the manifest says"):
        verify_bundle(tmp_path / "b")
    (tmp_path / "b/extra.bin").write_bytes(b"x")
    w.unlink()
    with pytest.raises(BundleError, match="file policy/weights.pt is missing"):
        verify_bundle(tmp_path / "b")
    (tmp_path / "b/manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest is not valid JSON"):
        load_manifest(tmp_path / "b/manifest.json")
    with pytest.raises(BundleError, match="field 'release' missing"):
        verify_bundle(tmp_path / "b", {**m, "release": "one"})


def test_delta_ships_only_what_the_parent_lacks_and_assembles_exactly(tiny_policy, exam_report, tmp_path):
    store = tmp_path / "chunks"
    parent = build_bundle(tiny_policy, exam_report, 1, None, tmp_path / "b1")
    store_chunks(tmp_path / "b1", parent, store)
    child_policy = practiced(tiny_policy, tmp_path / "practiced")
    child = build_bundle(child_policy, exam_report, 2, 1, tmp_path / "b2")
    d = delta(child, parent)
    unchanged = [n for n, f in child["files"].items() if n in parent["files"] and parent["files"][n]["sha256"] == f["sha256"]]
    assert "policy/weights.pt" in unchanged and "policy/model.onnx" in unchanged
    changed_bytes = sum(f["length"] for n, f in child["files"].items() if n not in unchanged)
    assert 0 < d["delta_bytes"] <= changed_bytes < d["full_bytes"]
    assert delta(child, None)["ratio"] == 1.0
    # the robot side: the new chunks arrive, the bundle is rebuilt and verified byte for byte
    assert store_chunks(tmp_path / "b2", child, store) == d["delta_bytes"]
    out = assemble(child, store, tmp_path / "robot" / "2")
    assert verify_bundle(out, child) == child
    for name in child["files"]:
        assert (out / name).read_bytes() == (tmp_path / "b2" / name).read_bytes()
    # a corrupt chunk is named, and the previous folder is left as it was
    digest = child["files"]["policy/residual.pt"]["chunks"][0]
    chunk_path(store, digest).write_bytes(b"garbage")
    with pytest.raises(BundleError, match=f"chunk {digest} of policy/residual.pt .* is corrupt"):
        assemble(child, store, tmp_path / "robot" / "2")
    assert verify_bundle(tmp_path / "robot" / "2", child) == child


# ---------------------------------------------------------------- TUF signing and verification
def test_signed_repository_verifies_and_refuses_tampering(tmp_path):
    repo = SigningRepo(tmp_path / "home")
    keyids = repo.init()
    assert set(keyids) == {"root", "targets", "snapshot", "timestamp"}
    assert oct((tmp_path / "home/keys/targets.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(SigningError, match="already holds a TUF repository"):
        repo.init()
    manifest = json.dumps({"format": "academy-bundle/1", "release": 1}).encode()
    info = repo.add_target("bundles/1/manifest.json", manifest, {"release": 1, "hardware_profiles": ["ah1-cm3"]})
    root = repo.trusted_root()

    def verifier(name):
        return TufVerifier(directory_url(repo.repo), tmp_path / name, root)

    got, ti = verifier("c1").manifest(1)
    assert got["release"] == 1 and ti.custom == {"release": 1, "hardware_profiles": ["ah1-cm3"]}
    with pytest.raises(SigningError, match="release 2 is not a signed target"):
        verifier("c2").manifest(2)
    # a tampered manifest: the bytes no longer match the signed hash
    target = repo.targets_dir / "bundles/1" / f"{info.hashes['sha256']}.manifest.json"
    target.write_bytes(manifest.replace(b'"release": 1', b'"release": 9'))
    with pytest.raises(SigningError, match="does not verify"):
        verifier("c3").manifest(1)
    target.write_bytes(manifest)
    # targets metadata signed by a key the root does not name
    from securesystemslib.signer import CryptoSigner

    md = repo.load("targets")
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())
    path = repo.metadata_dir / f"{md.signed.version}.targets.json"
    good = path.read_bytes()
    path.write_bytes(md.to_bytes())
    with pytest.raises(SigningError, match="does not verify.*targets"):
        verifier("c4").manifest(1)
    # unsigned metadata
    md.signatures.clear()
    path.write_bytes(md.to_bytes())
    with pytest.raises(SigningError, match="does not verify"):
        verifier("c5").manifest(1)
    path.write_bytes(good)
    assert verifier("c6").manifest(1)[0]["release"] == 1
    # a key file that is not this repository's
    (repo.keys_dir / "targets.pem").write_bytes(CryptoSigner.generate_ed25519().private_bytes)
    with pytest.raises(SigningError, match="is not a targets key of this repository's root"):
        repo.add_target("bundles/2/manifest.json", b"{}", {"release": 2})


# ---------------------------------------------------------------- the whole release path
def test_publish_signs_registers_and_a_robot_can_verify(tiny_policy, exam_report, tmp_path):
    home = ReleaseHome(tmp_path / "rel")
    with pytest.raises(ReleaseError, match="no signed repository"):
        home.publish(str(tiny_policy), exam_report)
    home.init()
    first = home.publish(str(tiny_policy), exam_report, note="first")
    assert first.release == 1 and first.delta["ratio"] == 1.0
    second = home.publish(str(practiced(tiny_policy, tmp_path / "pr")), exam_report)
    assert second.release == 2 and second.manifest["parent"] == 1 and second.delta["ratio"] < 1.0
    out = home.verify(2)
    assert out["files"] == len(second.manifest["files"])
    # a candidate that crossed a safety limit is refused with the reason, and the refusal is kept
    unsafe = json.loads(json.dumps(exam_report))
    unsafe["skills"]["handover"]["safety"]["contact_force"] = 4
    with pytest.raises(GateRefused, match="handover: safety limit 'contact_force' crossed on 4 control steps"):
        home.publish(str(tiny_policy), unsafe)
    assert [e["passed"] for e in home.registry.exams()] == [True, True, False]
    assert home.registry.last_number() == 2
    # a chunk tampered in the repository is caught when a robot assembles the bundle
    name = "policy/weights.pt"
    chunk_path(home.signing.chunks_dir, second.manifest["files"][name]["chunks"][0]).write_bytes(b"bad")
    with pytest.raises(BundleError, match=f"of {name} .* is corrupt"):
        home.verify(2)


def test_cli_release_round_trip(tiny_policy, exam_report, tmp_path):
    runner = CliRunner()
    home = tmp_path / "h"
    report = tmp_path / "exam.json"
    report.write_text(json.dumps(exam_report))
    r = runner.invoke(app, ["release", "init", "--home", str(home)])
    assert r.exit_code == 0, r.output
    assert "root" in r.output and "offline" in r.output
    r = runner.invoke(app, ["release", "publish", "--policy", str(tiny_policy), "--exam", str(report), "--home", str(home)])
    assert r.exit_code == 0, r.output
    assert "release 1" in r.output
    r = runner.invoke(app, ["release", "verify", "1", "--home", str(home)])
    assert r.exit_code == 0 and "verified" in r.output, r.output
    r = runner.invoke(app, ["releases", "--home", str(home)])
    assert r.exit_code == 0 and "ah1" in r.output, r.output
    r = runner.invoke(app, ["releases", "--home", str(home), "compare", "1", "1"])
    assert r.exit_code == 0 and "PASSED" in r.output, r.output
    r = runner.invoke(app, ["release", "publish", "--policy", str(tiny_policy), "--exam", str(tmp_path / "nope.json"),
                            "--home", str(home)])
    assert r.exit_code != 0 and "does not exist" in str(r.exception)
