"""runbooks.archive.lock: atomic environment locks, refusal naming the holder, stale takeover."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runbooks.archive import lock
from runbooks.archive.lock import LockHeld, acquire, holder_alive, read_holder


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_acquire_writes_holder_and_release_removes(tmp_path: Path) -> None:
    held = acquire(tmp_path, "staging", run_id="r1", actor="alice")
    data = read_holder(tmp_path, "staging")
    assert data is not None
    assert data["run_id"] == "r1" and data["actor"] == "alice" and data["pid"] == os.getpid()
    assert data["host"] == socket.gethostname() and data["since"]
    assert held.took_over_from is None
    held.release()
    assert read_holder(tmp_path, "staging") is None
    held.release()  # idempotent


def test_second_acquire_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with acquire(tmp_path, "production", run_id="r-first", actor="alice"):
        with pytest.raises(LockHeld) as e:
            acquire(tmp_path, "production", run_id="r-second", actor="bob")
        msg = str(e.value)
        assert "r-first" in msg and "alice" in msg and "since" in msg and str(os.getpid()) in msg
        assert e.value.holder["run_id"] == "r-first"
        # other environments are independent
        with acquire(tmp_path, "staging", run_id="r-other", actor="bob"):
            pass
    assert read_holder(tmp_path, "production") is None


def test_dead_holder_is_taken_over_and_reported(tmp_path: Path) -> None:
    stale = {"run_id": "r-dead", "actor": "ghost", "since": "x", "pid": _dead_pid(), "host": socket.gethostname()}
    (tmp_path / "sandbox.lock").write_text(json.dumps(stale))
    assert holder_alive(stale) is False
    with acquire(tmp_path, "sandbox", run_id="r-new", actor="alice") as held:
        assert held.took_over_from == stale
        assert read_holder(tmp_path, "sandbox")["run_id"] == "r-new"  # type: ignore[index]


def test_recycled_pid_counts_as_dead(tmp_path: Path) -> None:
    # our own (live) pid, but a different process start time: the holder is gone, the pid was reused
    stale = {"run_id": "r-old", "pid": os.getpid(), "host": socket.gethostname(), "process_started": 1.0}
    assert holder_alive(stale) is False


def test_other_host_or_unreadable_lock_is_never_taken_over(tmp_path: Path) -> None:
    other = {"run_id": "r-far", "actor": "carol", "since": "x", "pid": 1, "host": "elsewhere.example"}
    assert holder_alive(other) is None
    (tmp_path / "staging.lock").write_text(json.dumps(other))
    with pytest.raises(LockHeld, match="r-far"):
        acquire(tmp_path, "staging", run_id="r-me", actor="me")
    (tmp_path / "production.lock").write_text("{not json")
    with pytest.raises(LockHeld, match=r"remove .*production\.lock by hand"):
        acquire(tmp_path, "production", run_id="r-me", actor="me")


def test_release_leaves_someone_elses_lock(tmp_path: Path) -> None:
    held = acquire(tmp_path, "staging", run_id="r1", actor="a")
    (tmp_path / "staging.lock").write_text(json.dumps({"run_id": "r2", "pid": 1, "host": "h"}))
    held.release()
    assert read_holder(tmp_path, "staging")["run_id"] == "r2"  # type: ignore[index]


def test_concurrent_acquirers_exactly_one_wins(tmp_path: Path) -> None:
    wins: list[str] = []
    refusals: list[str] = []

    def attempt(i: int) -> None:
        try:
            acquire(tmp_path, "sandbox", run_id=f"r{i}", actor="t")
            wins.append(f"r{i}")
        except LockHeld:
            refusals.append(f"r{i}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(refusals) == 7
    assert read_holder(tmp_path, "sandbox")["run_id"] == wins[0]  # type: ignore[index]


def test_bad_environment_names_are_rejected(tmp_path: Path) -> None:
    for bad in ("../x", ".guard", "a/b", ""):
        with pytest.raises(ValueError):
            lock.lock_path(tmp_path, bad)
