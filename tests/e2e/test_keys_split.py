"""split-trigger-review through the runner: quiet twin passes; a worker memory profile above the threshold
and a slow API fire their triggers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from runbooks.archive.manifest import RunStatus
from runbooks.runner.run import run_procedure
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox]


def set_profile(sbx: Sandbox, service: str, profile: dict[str, float]) -> None:
    state = sbx.components["render"]
    headers = {"Authorization": f"Bearer {sbx.secret('render_api_key')}"}
    ids = {s["name"]: s["id"] for s in httpx.get(f"{state.address}/__twin/services", headers=headers).json()}
    httpx.put(f"{state.address}/__twin/metrics/{ids[service]}", json=profile, headers=headers).raise_for_status()


def verdicts(archive: Path) -> tuple[RunStatus, dict[str, Any]]:
    out = run_procedure("split-trigger-review", archive_root=archive)
    assert out.run_dir is not None
    m = json.loads((Path(out.run_dir) / "run.json").read_text())
    return out.status, {r["check"]: r["status"] for r in m["results"]["triggers"]}


def test_split_triggers(sandbox: Sandbox, tmp_path: Path) -> None:
    archive = tmp_path / "runs"
    status, got = verdicts(archive)
    assert status is RunStatus.SUCCEEDED
    assert got == {"split.worker_memory": "PASS", "split.api_latency": "PASS", "split.multi_region": "PASS"}
    try:
        set_profile(sandbox, "worker", {"memory_fraction": 0.85})
        set_profile(sandbox, "api", {"latency_p95_ms": 400})
        status, got = verdicts(archive)
        assert status is RunStatus.FAILED
        assert got["split.worker_memory"] == "FAIL" and got["split.api_latency"] == "FAIL"
    finally:
        set_profile(sandbox, "worker", {"memory_fraction": 0.45})
        set_profile(sandbox, "api", {"latency_p95_ms": 95})
