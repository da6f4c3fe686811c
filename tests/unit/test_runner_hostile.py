"""The runner against a hostile notebook author (issue 9 items 6, 11, 12; issue 10 item 3).

Each test runs ``tests/notebooks/hostile.ipynb`` through the real runner (a real kernel) with one ``action``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from runbooks.archive.manifest import RunStatus
from runbooks.errors import Refused
from runbooks.runner.output_cap import MARKER_PREFIX, OutputCaps
from runbooks.runner.run import RunOutcome, run_procedure

NOTEBOOK = str(Path(__file__).resolve().parents[1] / "notebooks" / "hostile.ipynb")


def run(tmp_path: Path, action: str, **kw: Any) -> RunOutcome:
    params = {"action": action, **{k: str(v) for k, v in kw.pop("params", {}).items()}}
    return run_procedure(NOTEBOOK, params=params, archive_root=tmp_path / "runs", **kw)


def archived(out: RunOutcome) -> dict[str, Any]:
    assert out.run_dir is not None
    return json.loads((out.run_dir / "notebook.ipynb").read_text())


def texts(cell: dict[str, Any]) -> list[str]:
    out = []
    for o in cell["outputs"]:
        if "text" in o:
            out.append("".join(o["text"]))
        for v in (o.get("data") or {}).values():
            out.append(v if isinstance(v, str) else "".join(v))
    return out


# --- item 6: no core dumps ------------------------------------------------------------------------------
def test_the_kernel_runs_with_no_core_dumps(tmp_path: Path) -> None:
    out = run(tmp_path, "rlimit")
    assert out.status is RunStatus.SUCCEEDED
    assert "RLIMIT_CORE (0, 0)" in json.dumps(archived(out))  # soft and hard: the kernel cannot raise it


# --- issue 10 item 3: refusals by class -----------------------------------------------------------------
def test_a_refusal_class_nobody_registered_is_refused(tmp_path: Path) -> None:
    out = run(tmp_path, "own_refusal")
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and out.error.kind == "CustomRefusal"


def test_a_preflight_refusal_of_a_procedure_is_refused(tmp_path: Path) -> None:
    out = run(tmp_path, "preflight_refusal")
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and out.error.kind == "FlipRefused"


def test_an_exception_merely_named_like_a_refusal_is_a_failure(tmp_path: Path) -> None:
    out = run(tmp_path, "impostor")
    assert out.status is RunStatus.FAILED and out.exit_code == 1
    assert out.error is not None and out.error.kind == "BadParameter"


def test_every_refusal_of_the_procedures_is_a_refused() -> None:
    from runbooks.kernel.guard import ApplyRefused
    from runbooks.procedures.flip import FlipRefused
    from runbooks.procedures.rotation import RotationRefused

    for cls in (ApplyRefused, FlipRefused, RotationRefused):
        assert issubclass(cls, Refused), cls
    import runbooks.errors

    assert not hasattr(runbooks.errors, "REFUSAL_NAMES")  # no registry of names to keep up to date


# --- item 11: output caps -------------------------------------------------------------------------------
def test_a_flood_is_cut_with_a_marker_and_the_status_is_unaffected(tmp_path: Path) -> None:
    out = run(tmp_path, "flood", params={"megabytes": 40})
    assert out.status is RunStatus.SUCCEEDED
    assert out.run_dir is not None
    size = (out.run_dir / "notebook.ipynb").stat().st_size
    assert size < OutputCaps().per_cell + 256 * 1024, size
    nbj = archived(out)
    (cell,) = [c for c in nbj["cells"] if 'action == "flood"' in "".join(c["source"])]
    shown = texts(cell)
    assert shown[-1].startswith(MARKER_PREFIX) and "--max-cell-output" in shown[-1]
    assert cell["outputs"][-1]["output_type"] == "display_data"  # a separate output after the cut text
    assert cell["outputs"][-1]["metadata"]["runbooks"]["output_cut"]["dropped_characters"] > 0
    assert "the end of the flood" not in "".join(shown)
    assert "last cell" in json.dumps(nbj)  # later cells still ran and show their output


def test_caps_are_overridable(tmp_path: Path) -> None:
    out = run(tmp_path, "flood", params={"megabytes": 1}, output_caps=OutputCaps(per_cell=4096, per_run=8192))
    assert out.status is RunStatus.SUCCEEDED
    cell = next(c for c in archived(out)["cells"] if c.get("outputs") and MARKER_PREFIX in json.dumps(c["outputs"]))
    assert sum(len(t) for t in texts(cell)[:-1]) == 4096


def test_printing_100_mb_does_not_grow_the_runner(tmp_path: Path) -> None:
    """The CLI runner's peak memory (sampled; about 450 MiB uncapped) stays near its idle size (about 160 MiB)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "runbooks.cli.main", "run", NOTEBOOK, "-p", "action=flood", "-p", "megabytes=100"]
    proc = subprocess.Popen(
        [*cmd, "--archive", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    runner, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, runner.memory_info().rss)
        time.sleep(0.02)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert peak < 250 * 2**20, f"peak RSS {peak >> 20} MiB"


# --- item 12: descendants -------------------------------------------------------------------------------
def test_a_daemonised_descendant_is_stopped_before_the_lock_is_released(tmp_path: Path) -> None:
    marker = tmp_path / "daemon.pid"
    lock = tmp_path / "runs" / "locks" / "sandbox.lock"
    out = run(tmp_path, "daemon", params={"marker": marker, "watch": lock})
    pid = int(marker.read_text())
    try:
        assert out.status is RunStatus.SUCCEEDED
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid), "the daemon outlived the run"
        assert not lock.exists()
        assert not Path(f"{marker}.saw-gone").exists(), "the daemon was still running when the lock was released"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(autouse=True)
def _no_core_limit_change() -> Any:
    """The runner limits its kernels, never itself (its own limit is untouched by a run)."""
    before = resource.getrlimit(resource.RLIMIT_CORE)
    yield
    assert resource.getrlimit(resource.RLIMIT_CORE) == before


def test_caps_are_overridable_from_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from runbooks.cli.main import app

    args = ["run", NOTEBOOK, "-p", "action=flood", "-p", "megabytes=1", "--max-cell-output", "1000"]
    result = CliRunner().invoke(app, [*args, "--archive", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run_json,) = (tmp_path / "runs").glob("*/*/*/*/notebook.ipynb")
    nbj = json.loads(run_json.read_text())
    cell = next(c for c in nbj["cells"] if c.get("outputs") and MARKER_PREFIX in json.dumps(c["outputs"]))
    assert sum(len(t) for t in texts(cell)[:-1]) == 1000
