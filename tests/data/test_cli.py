from typer.testing import CliRunner

from academy.cli import app

from dshelp import write_dataset

runner = CliRunner()


def said(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def test_data_info_validate_filter(tmp_path):
    ds, _ = write_dataset(tmp_path / "ds")
    r = runner.invoke(app, ["data", "info", str(ds.root)])
    assert r.exit_code == 0 and "5 episodes" in said(r)
    r = runner.invoke(app, ["data", "validate", str(ds.root)])
    assert r.exit_code == 0 and "valid" in said(r)
    r = runner.invoke(app, ["data", "filter", str(ds.root), "--out", str(tmp_path / "f"), "--outcome", "failure"])
    assert r.exit_code == 0 and "2 episodes" in said(r)


def test_data_validate_names_the_broken_file(tmp_path):
    ds, _ = write_dataset(tmp_path / "ds")
    (ds.root / "data/chunk-000/file-002.parquet").write_bytes(b"garbage")
    r = runner.invoke(app, ["data", "validate", str(ds.root)])
    assert r.exit_code == 1 and "file-002.parquet" in said(r)


def test_eval_refuses_a_folder_that_is_no_checkpoint(tmp_path):
    r = runner.invoke(app, ["eval", "--policy", str(tmp_path), "--episodes", "1"])
    assert r.exit_code != 0 and "not a policy checkpoint" in said(r)
