"""The data runbooks through the runner against the session twin: backup → posture → drill, PITR dry runs
and refusals. Nothing here restores (see test_data_pitr.py): the session twin's data stays as seeded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import assert_refused
from runner_fixtures import run_runbook as run

from runbooks.archive.manifest import RunStatus
from runbooks.procedures import pitr
from runbooks.providers.postgres import Postgres
from runbooks.providers.supabase import SupabaseManagement
from runbooks.runner.run import run_procedure
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data-runs")


def _secret_values(sandbox: Sandbox) -> list[str]:
    from psycopg.conninfo import conninfo_to_dict

    values = [p.read_text().strip() for p in (sandbox.root / "secrets").iterdir()]
    values.append(str(conninfo_to_dict(sandbox.database_url)["password"]))
    return [v for v in values if len(v) >= 8]


def _stderr_outputs(run_dir: Path) -> str:
    nb = json.loads((run_dir / "notebook.ipynb").read_text())
    return "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )


def test_backup_posture_and_drill_chain(sandbox: Sandbox, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # as under cron or in a container: no warning about it
    backup_run, backup_rec = run("nightly-backup", archive)
    assert backup_run.status is RunStatus.SUCCEEDED, backup_run.error
    b = backup_rec["results"]["backup"]
    env = sandbox.inventory()
    admin = sandbox.s3_client("admin")
    head = admin.head_object(Bucket=env.backup_bucket.name, Key=b["key"], VersionId=b["version_id"])
    assert head["ContentLength"] == b["size"] and b["rows"] == sum(backup_rec["results"]["row_counts"].values())

    posture_run, posture_rec = run("verify-backup-posture", archive)
    assert posture_run.status is RunStatus.SUCCEEDED, posture_run.error
    checks = posture_rec["results"]["checks"]
    assert {c["status"] for c in checks} == {"PASS"} and len(checks) == 11
    fresh = next(c for c in checks if c["check"] == "backup.freshness")
    assert fresh["subject"] == b["key"]  # the backup just taken is the latest

    drill_run, drill_rec = run("restore-drill", archive)
    assert drill_run.status is RunStatus.SUCCEEDED, drill_run.error
    d = drill_rec["results"]["drill"]
    assert d["ok"] and d["key"] == b["key"] and d["sha256"] == b["sha256"]
    assert d["rows"] == b["rows"] and d["scratch_dropped"]
    assert drill_rec["results"]["rto_seconds"] > 0 and drill_rec["results"]["rpo_seconds"] >= 0
    assert not Postgres(sandbox.database_url).database_exists(d["scratch_database"])
    for outcome in (backup_run, drill_run):
        stderr = _stderr_outputs(outcome.run_dir)
        assert "XDG_RUNTIME_DIR" not in stderr and "RuntimeDirWarning" not in stderr, stderr

    for secret in _secret_values(sandbox):
        for f in archive.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f"a secret value reached {f}"


def _state(sandbox: Sandbox) -> tuple[dict[str, Any], str, dict[str, Any]]:
    sb = SupabaseManagement.from_environment(sandbox.inventory())
    marks = pitr.markers(Postgres(sandbox.database_url)) or {}
    return marks, sb.project_status(), sb.list_backups()["physical_backup_data"]


def test_pitr_dry_run_shows_the_plan_and_changes_nothing(sandbox: Sandbox, archive: Path) -> None:
    before = _state(sandbox)
    outcome, rec = run("restore-pitr", archive)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    plan = rec["results"]["plan"]
    assert plan["api_call"].startswith(f"POST /v1/projects/{plan['project_ref']}/database/backups/restore-pitr")
    assert plan["target"] == "now (at apply)" and plan["unavailable"]
    assert "pitr_timeline" not in rec["results"]
    after = _state(sandbox)
    assert after[0] == before[0] and after[1] == "ACTIVE_HEALTHY"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (
            {"target_time": "last tuesday"},
            "target_time (value not shown): not an ISO 8601 timestamp; give one with a zone",
        ),
        ({"target_time": "2026-11-27T10:00:00"}, "target_time (value not shown): has no zone"),
        ({"target_time": "2099-01-01T00:00:00Z"}, "is in the future"),
        ({"target_time": "2000-01-01T00:00:00Z"}, "before the PITR window"),
        ({"target_time": "2000-01-01T00:00:00Z", "apply": "true", "confirm": "sandbox"}, "before the PITR window"),
        ({"reason": " "}, "reason=' ': is empty; say why"),
    ],
)
def test_pitr_bad_inputs_are_refused_and_nothing_changes(
    sandbox: Sandbox, archive: Path, params: dict[str, str], needle: str
) -> None:
    before = _state(sandbox)
    outcome, rec = run("restore-pitr", archive, **params)
    assert_refused(outcome, needle)
    assert "pitr_timeline" not in rec["results"]
    assert _state(sandbox)[0] == before[0] and _state(sandbox)[1] == "ACTIVE_HEALTHY"


def test_pitr_without_a_target_is_refused_outside_the_sandbox(sandbox: Sandbox, archive: Path) -> None:
    """`--apply --confirm production` with no target_time must never mean "rewind production to now"."""
    outcome = run_procedure(
        "restore-pitr",
        params={"apply": "true", "confirm": "production"},
        environment="production",
        archive_root=archive,
        timeout=300,
    )
    assert_refused(outcome, "target_time='': is required in production")
    rec = json.loads((outcome.run_dir / "run.json").read_text())
    assert "plan" not in rec["results"] and "pitr_timeline" not in rec["results"]


def _backup_keys(sandbox: Sandbox) -> set[str]:
    env = sandbox.inventory()
    listed = sandbox.s3_client("admin").list_objects_v2(Bucket=env.backup_bucket.name, Prefix=env.backup.prefix)
    return {o["Key"] for o in listed.get("Contents", [])}


def _databases(sandbox: Sandbox) -> set[str]:
    with Postgres(sandbox.database_url).connect() as conn:
        return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        (
            "nightly-backup",
            {"part_size_mib": "1"},
            "part_size_mib (value not shown): below S3's minimum part size of 5 MiB",
        ),
        ("nightly-backup", {"zstd_level": "0"}, "zstd_level (value not shown):"),
        ("restore-drill", {"backup_key": "nightly/nope"}, "backup_key (value not shown): no such backup"),
        ("restore-drill", {"jobs": "0"}, "jobs (value not shown):"),
        ("verify-backup-posture", {"max_age_hours": "-5"}, "max_age_hours (value not shown): is negative"),
    ],
)
def test_data_bad_inputs_are_refused_before_any_change(
    sandbox: Sandbox, archive: Path, name: str, params: dict[str, str], needle: str
) -> None:
    keys, databases = _backup_keys(sandbox), _databases(sandbox)
    outcome, rec = run(name, archive, **params)
    assert_refused(outcome, needle)
    assert not {"backup", "drill", "checks"} & set(rec["results"])
    assert _backup_keys(sandbox) == keys and _databases(sandbox) == databases


def test_drill_refusal_of_an_unknown_key_says_how_to_list_backups(sandbox: Sandbox, archive: Path) -> None:
    outcome, _ = run("restore-drill", archive, backup_key="nightly/nope")
    assert outcome.error is not None and "leave backup_key empty for the latest" in outcome.error.message
    assert "404" not in outcome.error.message and "NoSuchKey" not in outcome.error.message


def test_pitr_apply_needs_the_confirmation(sandbox: Sandbox, archive: Path) -> None:
    before = _state(sandbox)
    outcome, rec = run("restore-pitr", archive, apply="true", confirm="production")
    assert outcome.status in (RunStatus.FAILED, RunStatus.REFUSED)
    assert "pitr_timeline" not in rec.get("results", {})
    assert _state(sandbox)[0] == before[0]
