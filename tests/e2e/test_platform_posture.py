"""verify-platform-posture through the runner: the clean twin passes. Each platform fault failing exactly its
check is proven by the catalogue-generated tests/e2e/test_fault_catalogue.py (the platform faults share one
twin: group "platform" in their declarations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import run_runbook

from runbooks.archive.manifest import RunStatus
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox]

#: fault -> the (check, subject) it must fail; subject None means the Supabase project
FAULTS: dict[str, tuple[str, str | None]] = {
    "render-region-mismatch": ("render.region", "api"),
    "render-plan-drift": ("render.service", "worker"),
    "cron-job-missing": ("render.cron_job", "verify-backup-posture"),
    "env-group-unlinked": ("render.env_group_links", "spectral-sandbox-keys"),
    "pitr-window-short": ("supabase.pitr", None),
    "ssl-not-enforced": ("supabase.ssl", None),
    "network-restrictions-drift": ("supabase.network", None),
    "auth-token-lifetime-long": ("supabase.access_token_lifetime", None),
    "signing-key-legacy": ("supabase.signing_key", None),
    "vector-missing": ("supabase.vector", None),
}


def _rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rec["results"]["findings"])


def test_the_clean_twin_passes_every_platform_check(sandbox: Sandbox, tmp_path: Path) -> None:
    outcome, rec = run_runbook("verify-platform-posture", tmp_path / "runs")
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    rows = _rows(rec)
    assert {r["check"] for r in rows} >= {check for check, _ in FAULTS.values()} | {"supabase.signing_key"}
    assert [r for r in rows if r["status"] != "PASS"] == []
    # the twin's ids are in the vendors' formats and every sandbox secret is there: the inventory is ready
    from runbooks.inventory import readiness

    assert readiness.check(sandbox.inventory()) == []
