"""Shared helpers of the runner's end-to-end tests (imported by tests/e2e/test_runner*.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PROJECT = Path(__file__).resolve().parents[2]


def nb(name: str) -> str:
    """Path of a test notebook."""
    return str(NOTEBOOKS / f"{name}.ipynb")


@pytest.fixture
def archive_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary archive root, also exported as RUNBOOKS_ARCHIVE for subprocesses and kernels."""
    root = tmp_path / "runs"
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(root))
    monkeypatch.setenv("RUNBOOKS_ACTOR", "e2e-tester")
    return root


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "runbooks.cli.main", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``runbooks ARGS`` in a subprocess (stdout/stderr captured: they are checked for leaks too)."""
    return subprocess.run(
        cli_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=PROJECT, env={**os.environ, **(env or {})}
    )


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
    )


def wait_for_file(path: Path, timeout: float = 90, proc: subprocess.Popen[str] | None = None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the runner exited early ({proc.returncode}): {out}\n{err}")
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout}s")


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("[0-9][0-9][0-9][0-9]/*/*/*/run.json"))


def manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def notebook(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "notebook.ipynb").read_text())


def outputs_text(nbj: dict[str, Any], index: int) -> str:
    """Every output of cell ``index`` as one JSON string."""
    return json.dumps(nbj["cells"][index].get("outputs", []))


def all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    """Every file under ``root`` (run dirs, ledger, index, locks...)."""
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


# -- runbooks (notebooks/) through the runner's Python API ------------------------------------------


def outcome_manifest(out: Any) -> dict[str, Any]:
    """The archived run.json of a RunOutcome."""
    assert out.run_dir is not None, out
    return manifest(Path(out.run_dir))


def run_runbook(name: str, archive: Path, **params: str) -> tuple[Any, dict[str, Any]]:
    """Run notebooks/<name> on the sandbox through run_procedure; (outcome, its run.json)."""
    from runbooks.runner.run import run_procedure

    outcome = run_procedure(name, params=params, environment="sandbox", archive_root=archive, timeout=300)
    return outcome, outcome_manifest(outcome) if outcome.run_dir else {}


def assert_refused(outcome: Any, needle: str) -> None:
    """Refused by the runbook itself (a runbooks.errors.Refused: BadParameter, ApplyRefused, a preflight's refusal):
    status refused, exit 2, and the message names it."""
    from runbooks.archive.manifest import RunStatus

    assert outcome.status is RunStatus.REFUSED and outcome.exit_code == 2, (outcome.status, outcome.error)
    assert outcome.error is not None and outcome.error.cell_index is not None, outcome.error
    assert needle in outcome.error.message, outcome.error
