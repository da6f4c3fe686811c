"""runbooks.guard_apply: dry run, confirmation, and the environment lock outside the runner."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.kernel import guard
from runbooks.kernel.guard import ApplyRefused, guard_apply


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "runs"
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(root))
    monkeypatch.delenv(guard.LOCKED_ENV, raising=False)
    monkeypatch.delenv(guard.RUN_ID_ENV, raising=False)
    held: dict[str, object] = {}
    monkeypatch.setattr(guard, "_held", held)
    from runbooks.kernel import interactive

    monkeypatch.setattr(interactive, "_sessions", {})
    yield root
    for lock in held.values():
        lock.release()  # type: ignore[attr-defined]


@pytest.mark.parametrize("apply", [False, None, "true", 1, "yes"])
def test_without_apply_true_it_is_a_dry_run(archive: Path, apply: object) -> None:
    with pytest.raises(ApplyRefused, match=r"dry run: nothing was changed in 'staging'.*--apply --confirm staging"):
        guard_apply(apply, "staging", "staging")
    assert not (archive / "locks" / "staging.lock").exists()


@pytest.mark.parametrize("confirm", ["", None, "production", "Staging", "staging "])
def test_confirm_must_name_the_environment(archive: Path, confirm: object) -> None:
    with pytest.raises(ApplyRefused, match=r"not applying to 'staging'.*confirm='staging'"):
        guard_apply(True, confirm, "staging")


def test_no_environment_is_refused(archive: Path) -> None:
    with pytest.raises(ApplyRefused, match="no target environment"):
        guard_apply(True, "", "")


def test_under_the_runner_the_runner_holds_the_lock(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(guard.LOCKED_ENV, "staging")
    guard_apply(True, "staging", "staging")
    assert not (archive / "locks" / "staging.lock").exists()  # nothing taken in the kernel


def test_interactively_the_apply_is_a_run_holding_the_lock_until_it_ends(archive: Path) -> None:
    import runbooks
    from runbooks.archive.stores import LocalStore
    from runbooks.kernel import interactive

    guard_apply(True, "sandbox", "sandbox")
    lock = archive / "locks" / "sandbox.lock"
    holder = json.loads(lock.read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    session = interactive._sessions["sandbox"]
    assert holder["run_id"] == session.run_id and "-interactive-" in session.run_id
    guard_apply(True, "sandbox", "sandbox")  # idempotent in the same kernel
    assert json.loads(lock.read_text()) == holder
    runbooks.record("applied", 1)
    runbooks.end_apply()
    assert not lock.exists()  # released when the apply ends, not at exit
    manifest = LocalStore(archive).read_manifest(session.run_id)
    assert manifest.trigger == "interactive" and manifest.status.value == "succeeded"
    assert manifest.results == {"applied": 1} and manifest.lock is not None
    runbooks.end_apply()  # nothing open any more: nothing happens
    assert len(LocalStore(archive).entries()) == 1


def test_interactively_a_live_holder_refuses(archive: Path) -> None:
    locks = archive / "locks"
    locks.mkdir(parents=True)
    holder = {"run_id": "r-live", "actor": "dave", "since": "now", "pid": os.getppid(), "host": socket.gethostname()}
    (locks / "production.lock").write_text(json.dumps(holder))
    with pytest.raises(ApplyRefused, match=r"locked by run r-live \(actor dave"):
        guard_apply(True, "production", "production")
