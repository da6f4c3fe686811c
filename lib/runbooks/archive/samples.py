"""Synthetic manifests for tests and the index benchmark (no notebook is executed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.archive.manifest import RunError, RunManifest, RunStatus
from runbooks.archive.store import Archive


def sample_manifest(
    procedure: str = "check-dns-posture",
    *,
    started_at: datetime | None = None,
    status: RunStatus = RunStatus.SUCCEEDED,
    environment: str = "sandbox",
    actor: str = "tester",
    trigger: str = "manual",
    duration: float = 1.5,
    results: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> RunManifest:
    start = started_at or datetime.now(UTC)
    error = None if status is RunStatus.SUCCEEDED else RunError(kind="ValueError", message="boom", cell_index=3)
    return RunManifest(
        run_id=run_id or Archive.new_run_id(procedure, now=start),
        procedure=procedure,
        notebook_sha256="ab" * 32,
        parameters={"environment": environment, "token_ref": "env:CF_TOKEN"},
        environment=environment,
        actor=actor,
        trigger=trigger,
        host="test-host",
        code_version="v0.1.0",
        started_at=start,
        ended_at=start + timedelta(seconds=duration),
        duration_seconds=duration,
        status=status,
        error=error,
        results=results or {},
    )
