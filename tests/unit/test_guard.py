"""runbooks.guard_apply: dry run, confirmation, and the environment lock outside the runner."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks import guard
from runbooks.guard import ApplyRefused, guard_apply


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "runs"
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(root))
    monkeypatch.delenv(guard.LOCKED_ENV, raising=False)
    monkeypatch.delenv(guard.RUN_ID_ENV, raising=False)
    held: dict[str, object] = {}
    monkeypatch.setattr(guard, "_held", held)
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


def test_interactively_it_takes_the_lock_for_the_kernels_life(archive: Path) -> None:
    guard_apply(True, "sandbox", "sandbox")
    lock = archive / "locks" / "sandbox.lock"
    holder = json.loads(lock.read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["run_id"].startswith("interactive-")
    guard_apply(True, "sandbox", "sandbox")  # idempotent in the same kernel
    assert json.loads(lock.read_text()) == holder


def test_interactively_a_live_holder_refuses(archive: Path) -> None:
    locks = archive / "locks"
    locks.mkdir(parents=True)
    holder = {"run_id": "r-live", "actor": "dave", "since": "now", "pid": os.getppid(), "host": socket.gethostname()}
    (locks / "production.lock").write_text(json.dumps(holder))
    with pytest.raises(ApplyRefused, match=r"locked by run r-live \(actor dave"):
        guard_apply(True, "production", "production")
