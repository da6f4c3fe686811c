"""``runbooks demo`` end to end: every runbook against a fresh twin, archive verified, twin down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbooks.runner.run import list_notebooks
from runbooks.sandbox import processes

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def test_demo_runs_every_runbook_and_leaves_nothing_running(tmp_path: Path) -> None:
    notebooks = list_notebooks()
    if not notebooks:
        pytest.skip("no runbook in notebooks/ yet")
    root, archive = tmp_path / "twin", tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOKS_SANDBOX", "RUNBOOKS_ARCHIVE")}
    out = subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", "demo", "--root", str(root), "--archive", str(archive)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**env, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    for nb in notebooks:
        assert nb.stem in out.stdout  # one row per procedure
    assert "archive verified" in out.stdout
    assert "sandbox down" in out.stdout

    # every run is in the archive, with its record
    runs = [p for p in archive.rglob("run.json")]
    destructive_applies = sum(
        1 for nb in notebooks if json.loads(nb.read_text())["metadata"].get("runbook", {}).get("demo_apply")
    )
    assert len(runs) == len(notebooks) + destructive_applies

    # and the twin is gone
    state = json.loads((root / "state.json").read_text())
    assert state["status"] == "down"
    refs = [processes.ProcessRef.from_json(p) for c in state["components"].values() for p in c["procs"]]
    assert refs and not any(processes.alive(r) for r in refs)
