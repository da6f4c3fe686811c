"""Each backup-posture promise broken on purpose in the twin, and the data runbooks catching it.

Two faulted twins, faults grouped where they do not hide one another:
- the S3 layout faults (sandbox): versioning off, no object lock, runtime reads backups, writer can
  delete, backup bucket used as an app bucket;
- the data faults (supabase): a stale backup, a corrupt backup, PITR disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import assert_refused
from runner_fixtures import run_runbook as _run

from runbooks.archive.manifest import RunStatus
from runbooks.procedures import pitr
from runbooks.providers.postgres import Postgres
from runbooks.providers.supabase import SupabaseManagement
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
S3_FAULTS = [
    "backup-versioning-off",
    "backup-no-object-lock",
    "runtime-reads-backups",
    "writer-can-delete-backups",
    "backup-bucket-is-app-bucket",
]
DATA_FAULTS = ["backup-stale", "backup-corrupt", "pitr-disabled"]


def _statuses(rec: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in rec["results"]["checks"]}


@pytest.fixture(scope="module")
def s3_faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from runbooks.sandbox.fixture import running_sandbox

    with running_sandbox(
        tmp_path_factory.mktemp("s3-faults"), faults=S3_FAULTS, components=["supabase"], set_env=True
    ) as sbx:
        yield sbx


@pytest.fixture(scope="module")
def data_faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from runbooks.sandbox.fixture import running_sandbox

    with running_sandbox(
        tmp_path_factory.mktemp("data-faults"), faults=DATA_FAULTS, components=["supabase"], set_env=True
    ) as sbx:
        yield sbx


def test_posture_fails_on_each_s3_layout_fault(s3_faulted: Sandbox, tmp_path: Path) -> None:
    outcome, rec = _run("verify-backup-posture", tmp_path / "runs")
    assert outcome.status is RunStatus.FAILED and outcome.error is not None
    assert outcome.error.kind == "ChecksFailed"
    st = _statuses(rec)
    expected_fail = {
        "backup.isolated",  # backup-bucket-is-app-bucket
        "backup.versioning",  # backup-versioning-off
        "backup.object_lock",  # backup-no-object-lock
        "writer.cannot_delete_locked",  # writer-can-delete-backups
        "runtime.no_backup_access",  # runtime-reads-backups
    }
    assert {c for c, s in st.items() if s == "FAIL"} == expected_fail, st
    for c in rec["results"]["checks"]:
        if c["status"] == "FAIL":
            assert c["evidence"] and c["remediation"]
            assert c["check"] in outcome.error.message


def test_posture_fails_on_stale_and_corrupt_backups(data_faulted: Sandbox, tmp_path: Path) -> None:
    outcome, rec = _run("verify-backup-posture", tmp_path / "runs")
    assert outcome.status is RunStatus.FAILED
    st = _statuses(rec)
    assert {c for c, s in st.items() if s == "FAIL"} == {"backup.freshness", "backup.checksum"}, st
    checks = {c["check"]: c for c in rec["results"]["checks"]}
    assert "72." in checks["backup.freshness"]["evidence"]
    assert "!= sidecar" in checks["backup.checksum"]["evidence"]


def test_drill_refuses_the_corrupt_backup_and_leaves_no_scratch_database(data_faulted: Sandbox, tmp_path: Path) -> None:
    pg = Postgres(data_faulted.database_url)
    with pg.connect() as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    outcome, rec = _run("restore-drill", tmp_path / "runs")
    assert outcome.status is RunStatus.FAILED
    d = rec["results"]["drill"]
    assert not d["ok"] and d["error"].startswith("ChecksumMismatch") and not d["scratch_database"]
    with pg.connect() as conn:
        assert {r[0] for r in conn.execute("SELECT datname FROM pg_database")} == before


def test_a_new_backup_heals_the_stale_and_corrupt_findings(data_faulted: Sandbox, tmp_path: Path) -> None:
    archive = tmp_path / "runs"
    assert _run("nightly-backup", archive)[0].status is RunStatus.SUCCEEDED
    outcome, rec = _run("verify-backup-posture", archive)
    assert outcome.status is RunStatus.SUCCEEDED, _statuses(rec)
    assert _run("restore-drill", archive)[0].status is RunStatus.SUCCEEDED


def test_pitr_refused_when_disabled_and_nothing_changes(data_faulted: Sandbox, tmp_path: Path) -> None:
    pg = Postgres(data_faulted.database_url)
    before = pitr.markers(pg)
    outcome, rec = _run("restore-pitr", tmp_path / "runs", apply="true", confirm="sandbox")
    assert_refused(outcome, "environment='sandbox': point-in-time recovery is disabled")
    assert "pitr_timeline" not in rec["results"]
    assert pitr.markers(pg) == before
    sb = SupabaseManagement.from_environment(data_faulted.inventory())
    assert sb.list_backups()["pitr_enabled"] is False and sb.project_status() == "ACTIVE_HEALTHY"


def test_fault_catalogue_lists_the_data_faults() -> None:
    from runbooks.sandbox.faults import catalogue

    cat = catalogue()
    for fault in DATA_FAULTS:
        assert cat.get(fault), fault
