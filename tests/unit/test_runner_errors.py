"""An unexpected runner error after the kernel started still leaves a record; early refusals keep the sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from runbooks.archive.manifest import RunStatus
from runbooks.archive.store import Archive
from runbooks.archive.verify import verify
from runbooks.runner import engine as engine_mod
from runbooks.runner.run import run_procedure

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_runner_failure_after_cells_ran_is_recorded_as_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = engine_mod.Engine.run

    async def run_then_fail(self: engine_mod.Engine) -> Any:
        await real_run(self)  # every cell ran (a destructive apply may have happened)
        raise RuntimeError("injected: the runner broke after the kernel ran")

    monkeypatch.setattr(engine_mod.Engine, "run", run_then_fail)
    marker = tmp_path / "ran"
    out = run_procedure(str(NOTEBOOKS / "succeed.ipynb"), params={"marker": str(marker)}, archive_root=tmp_path / "a")
    assert marker.exists()
    assert out.status is RunStatus.FAILED and out.exit_code == 1
    assert out.error is not None and out.error.kind == "RunnerError"
    assert "RuntimeError: injected: the runner broke after the kernel ran" in out.error.message
    assert out.run_dir is not None
    nbj = json.loads((out.run_dir / "notebook.ipynb").read_text())
    assert "environment=sandbox count=3" in json.dumps(nbj)  # the partial notebook is the record
    assert nbj["metadata"]["runbook_run"]["status"] == "failed"
    m = json.loads((out.run_dir / "run.json").read_text())
    assert m["status"] == "failed" and m["error"]["kind"] == "RunnerError" and m["results"]["count"] == 3
    assert verify(Archive(tmp_path / "a")).ok


def test_runner_failure_before_the_kernel_started_is_recorded_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(self: engine_mod.Engine) -> Any:
        raise ValueError("injected early")

    monkeypatch.setattr(engine_mod.Engine, "run", fail)
    out = run_procedure(str(NOTEBOOKS / "raise.ipynb"), archive_root=tmp_path / "a")
    assert out.status is RunStatus.FAILED and out.error is not None and out.error.kind == "RunnerError"
    assert out.run_dir is not None and (out.run_dir / "notebook.ipynb").is_file()


@pytest.mark.parametrize("bad", [{"timeout": -1.0}, {"trigger": "cron"}])
def test_refused_before_the_notebook_is_read_still_records_its_sha256(tmp_path: Path, bad: dict[str, Any]) -> None:
    path = NOTEBOOKS / "succeed.ipynb"
    out = run_procedure(str(path), archive_root=tmp_path / "a", **bad)
    assert out.status is RunStatus.REFUSED and out.run_dir is not None
    m = json.loads((out.run_dir / "run.json").read_text())
    assert m["notebook_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert m["parameters"] == {}


def test_refused_unknown_notebook_has_an_empty_sha256(tmp_path: Path) -> None:
    out = run_procedure(str(tmp_path / "absent.ipynb"), params={"x": "1"}, archive_root=tmp_path / "a")
    assert out.status is RunStatus.REFUSED and out.run_dir is not None
    m = json.loads((out.run_dir / "run.json").read_text())
    assert m["notebook_sha256"] == "" and m["parameters"] == {"x": "[not recorded]"}
