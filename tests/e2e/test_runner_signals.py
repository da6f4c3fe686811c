"""End to end: SIGTERM / SIGINT to a running runner -> interrupted, kernel stopped, partial notebook kept."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest
from runner_fixtures import archive_root, manifest, nb, notebook, run_dirs, start_cli, wait_for_file

__all__ = ["archive_root"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_interrupts_with_partial_notebook(archive_root: Path, tmp_path: Path, sig: signal.Signals) -> None:
    started = tmp_path / "started"
    proc = start_cli("run", nb("sleep"), "-p", f"started_marker={started}", "--archive", str(archive_root))
    kernel_pid = int(wait_for_file(started, proc=proc))
    assert psutil.pid_exists(kernel_pid)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.startswith("interrupted: run ")
    assert f"received {sig.name}" in err
    deadline = time.monotonic() + 15
    while psutil.pid_exists(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "interrupted" and m["error"]["kind"] == "Interrupted"
    nbj = notebook(run_dir)
    cell = nbj["cells"][m["error"]["cell_index"]]
    assert "time.sleep(seconds)" in "".join(cell["source"]) and cell["metadata"]["runbook_status"] == "interrupted"
    printed = json.dumps([o.get("text") for c in nbj["cells"] for o in c.get("outputs", []) if "text" in o])
    assert "before the sleep" in printed and "after the sleep" not in printed and "last cell" not in printed
    assert "KeyboardInterrupt" in json.dumps(cell["outputs"])  # the kernel was interrupted in that cell
    # ... and the cell says why: the runner's own error output after the kernel's KeyboardInterrupt
    last = cell["outputs"][-1]
    assert last["output_type"] == "error" and last["ename"] == "Interrupted", cell["outputs"]
    assert f"the runner received {sig.name}" in last["evalue"]


def test_kernel_does_not_outlive_a_killed_runner(archive_root: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    proc = start_cli("run", nb("sleep"), "-p", f"started_marker={started}", "--archive", str(archive_root))
    kernel_pid = int(wait_for_file(started, proc=proc))
    proc.kill()  # SIGKILL: no chance to clean up
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while psutil.pid_exists(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    assert run_dirs(archive_root) == []  # nothing half-written was archived


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.1, 0.4, 1.5])
def test_a_second_signal_at_any_delay_still_ends_interrupted(archive_root: Path, tmp_path: Path, delay: float) -> None:
    """Issue 9 item 9: SIGINT then SIGTERM ``delay`` seconds later (while the kernel is interrupted, stopped,
    or the record is written): always interrupted (130), never failed with a CancelledError."""
    started = tmp_path / "started"
    proc = start_cli("run", nb("sleep"), "-p", f"started_marker={started}", "--archive", str(archive_root))
    wait_for_file(started, proc=proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "CancelledError" not in out + err
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "interrupted" and m["error"]["kind"] == "Interrupted", m["error"]
