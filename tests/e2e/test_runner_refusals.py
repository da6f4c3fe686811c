"""End to end: malformed parameters are refused before any kernel starts (exit 2, refused record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_fixtures import all_bytes, archive_root, manifest, nb, notebook, run_cli, run_dirs

from runbooks.archive.manifest import RunStatus
from runbooks.runner.run import run_procedure

__all__ = ["archive_root"]

CASES = [
    ({"cuont": "3"}, "unknown parameter 'cuont'", "known parameters: environment, count"),
    ({"count": "three"}, "parameter 'count' is an int", "give a whole number"),
    ({"verbose": "maybe"}, "parameter 'verbose' is a bool", "true/false"),
    ({"ratio": "half"}, "parameter 'ratio' is a float", "give a number"),
    ({"mode": "turbo"}, "parameter 'mode' must be one of: fast, slow", "not valid"),
    ({"token_ref": "s3cr3t-pasted-value"}, "parameter 'token_ref' takes a secret reference", "env:"),
    ({"token_ref": "vault:kv/x"}, "parameter 'token_ref' takes a secret reference", "never a value"),
    ({"environment": "prod"}, "must be one of: production, staging, sandbox", "not valid"),
]


@pytest.mark.parametrize(("params", "names", "fix"), CASES)
def test_malformed_parameter_is_refused_without_a_kernel(
    archive_root: Path, tmp_path: Path, params: dict[str, str], names: str, fix: str
) -> None:
    marker = tmp_path / "ran"
    environment = params.get("environment", "sandbox")
    out = run_procedure(
        nb("succeed"), params={**params, "marker": str(marker)}, environment=environment, archive_root=archive_root
    )
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and out.error.kind == "Refused"
    assert names in out.error.message and fix in out.error.message
    assert out.duration < 5
    assert not marker.exists()  # no kernel ever ran the notebook
    assert out.run_dir is not None and sorted(p.name for p in out.run_dir.iterdir()) == ["run.json"]
    m = manifest(out.run_dir)
    assert m["status"] == "refused" and m["files"] == {}
    (name, bad), *_ = params.items()
    # a value that did not pass validation may be a pasted secret: neither echoed nor recorded
    assert repr(bad) not in out.error.message
    assert m["parameters"][name] == "[not recorded]" and m["parameters"]["marker"] == str(marker)
    assert len(m["notebook_sha256"]) == 64
    for _path, data in all_bytes(archive_root):
        assert json.dumps(bad).encode() not in data


def test_cli_refusals_exit_2_with_a_record(archive_root: Path, tmp_path: Path) -> None:
    bad = run_cli("run", nb("succeed"), "-p", "count=x", "--archive", str(archive_root))
    assert bad.returncode == 2
    assert "parameter 'count' is an int" in bad.stderr and bad.stdout.startswith("refused: run ")
    no_eq = run_cli("run", nb("succeed"), "-p", "count", "--archive", str(archive_root))
    assert no_eq.returncode == 2 and "write -p name=value" in no_eq.stderr
    clash = run_cli("run", nb("succeed"), "-p", "environment=staging", "--env", "production", "--archive",
                    str(archive_root))  # fmt: skip
    assert clash.returncode == 2 and "contradicts" in clash.stderr
    missing = run_cli("run", str(tmp_path / "nope.ipynb"), "--archive", str(archive_root))
    assert missing.returncode == 2 and "no such notebook" in missing.stderr
    unknown_apply = run_cli("run", nb("succeed"), "--apply", "--archive", str(archive_root))
    assert unknown_apply.returncode == 2 and "unknown parameter 'apply'" in unknown_apply.stderr
    bad_trigger = run_cli("run", nb("succeed"), "--trigger", "cron", "--archive", str(archive_root))
    assert bad_trigger.returncode == 2 and "--trigger" in bad_trigger.stderr
    statuses = [manifest(d)["status"] for d in run_dirs(archive_root)]
    assert statuses == ["refused"] * 6


def test_unusable_archive_fails_fast_with_exit_70(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    marker = tmp_path / "ran"
    proc = run_cli("run", nb("succeed"), "-p", f"marker={marker}", "--archive", str(not_a_dir / "runs"))
    assert proc.returncode == 70
    assert "runner error" in proc.stderr and "NotADirectoryError" in proc.stderr
    assert not marker.exists()  # no kernel was started for a run that could not be recorded


def test_bad_parameter_raised_inside_the_runbook_is_refused(archive_root: Path) -> None:
    out = run_procedure(nb("refuse_param"), params={"hostname": "bogus.example"}, archive_root=archive_root)
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and out.error.kind == "BadParameter"
    expected = "hostname (value not shown): not in the inventory; give one of the inventory's hostnames"
    assert out.error.message == expected
    assert out.run_dir is not None and sorted(p.name for p in out.run_dir.iterdir()) == ["notebook.ipynb", "run.json"]
    m = manifest(out.run_dir)
    assert m["status"] == "refused" and m["error"]["kind"] == "BadParameter"
    nbj = notebook(out.run_dir)
    assert nbj["metadata"]["runbook_run"]["status"] == "refused"
    cell = nbj["cells"][out.error.cell_index]
    assert cell["metadata"]["runbook_status"] == "refused"
    assert any(o["output_type"] == "error" and o["ename"] == "BadParameter" for o in cell["outputs"])
    # the executed notebook is the record; the refused value is not in it (it may be a pasted secret)
    assert "validating [REDACTED:refused:hostname]" in json.dumps(nbj) and "bogus.example" not in json.dumps(nbj)
    assert m["parameters"]["hostname"] == "[not recorded]"


def test_unconfirmed_apply_in_a_destructive_runbook_is_refused(archive_root: Path) -> None:
    # confirm names another environment (a value that names none is refused before the kernel starts)
    out = run_procedure(nb("refuse_apply"), params={"apply": "true", "confirm": "staging"}, archive_root=archive_root)
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and out.error.kind == "ApplyRefused"
    assert "sandbox" in out.error.message
    assert out.run_dir is not None and (out.run_dir / "notebook.ipynb").is_file()
    m = manifest(out.run_dir)
    assert m["status"] == "refused" and m["destructive"] is True and m["lock"]["environment"] == "sandbox"
    outputs = notebook(out.run_dir)["cells"][out.error.cell_index]["outputs"]
    assert not [o for o in outputs if o["output_type"] == "stream"]  # nothing after the gate ran
    cli = run_cli("run", nb("refuse_apply"), "--apply", "--confirm", "staging", "--archive", str(archive_root))
    assert cli.returncode == 2 and cli.stdout.startswith("refused: run ") and "ApplyRefused" in cli.stderr


@pytest.mark.parametrize(
    "option",
    ["db_password=Sup3rS3cretValue9", "token_ref:SuperSecretPassw0rd", "SuperSecretPassw0rd", "x:y=Sup3rS3cretValue9"],
)
def test_unknown_or_malformed_parameter_value_never_reaches_disk_or_stderr(archive_root: Path, option: str) -> None:
    value = "SuperSecretPassw0rd" if "SuperSecret" in option else "Sup3rS3cretValue9"
    proc = run_cli("run", nb("succeed"), "-p", option, "-p", "count=4", "--archive", str(archive_root))
    assert proc.returncode == 2 and proc.stdout.startswith("refused: run ")
    assert "name=value" in proc.stderr or "unknown parameter 'db_password'" in proc.stderr
    for stream in (proc.stdout, proc.stderr):
        assert value not in stream
    for path, data in all_bytes(archive_root):
        assert value.encode() not in data, f"the value reached {path}"
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "refused" and len(m["notebook_sha256"]) == 64
    if option.startswith("db_password="):
        assert m["parameters"] == {"db_password": "[not recorded]", "count": "4"}
