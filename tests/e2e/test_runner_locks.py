"""End to end: destructive runs lock their environment; dry run / apply through guard_apply."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from runner_fixtures import archive_root, manifest, nb, notebook, run_dirs, start_cli, wait_for_file

from runbooks.archive.manifest import RunStatus
from runbooks.runner.run import run_procedure

__all__ = ["archive_root"]


def test_second_concurrent_destructive_run_is_refused_naming_the_holder(archive_root: Path, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    first = start_cli(
        "run", nb("destructive"), "--apply", "--confirm", "sandbox", "--actor", "first-operator",
        "-p", f"started_marker={started}", "-p", f"wait_for={release}", "--archive", str(archive_root),
    )  # fmt: skip
    try:
        first_run_id = wait_for_file(started, proc=first)
        t0 = time.monotonic()
        second = run_procedure(
            nb("destructive"), params={"apply": "true", "confirm": "sandbox"}, actor="second-operator",
            archive_root=archive_root,
        )  # fmt: skip
        assert time.monotonic() - t0 < 10  # at once: no waiting for the holder
        assert second.status is RunStatus.REFUSED and second.exit_code == 2
        assert second.error is not None
        msg = second.error.message
        assert first_run_id in msg and "first-operator" in msg and "since" in msg
        assert second.run_dir is not None and not (second.run_dir / "notebook.ipynb").exists()
        assert manifest(second.run_dir)["status"] == "refused"
        # a non-destructive run on the same environment is not blocked
        assert run_procedure(nb("raise"), archive_root=archive_root).status is RunStatus.FAILED
    finally:
        release.write_text("go")
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    first_dir = next(d for d in run_dirs(archive_root) if manifest(d)["run_id"] == first_run_id)
    m = manifest(first_dir)
    assert m["status"] == "succeeded" and m["destructive"] is True
    assert m["lock"]["environment"] == "sandbox" and m["lock"]["took_over_from"] is None
    assert m["results"] == {"applied": True}
    assert not (archive_root / "locks" / "sandbox.lock").exists()  # released


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_lock_of_a_dead_process_is_taken_over_and_recorded(archive_root: Path) -> None:
    locks = archive_root / "locks"
    locks.mkdir(parents=True)
    stale = {
        "run_id": "20260101T000000Z-crashed-abcdef",
        "actor": "ghost",
        "since": "2026-01-01T00:00:00+00:00",
        "pid": _dead_pid(),
        "host": socket.gethostname(),
    }
    (locks / "staging.lock").write_text(json.dumps(stale))
    out = run_procedure(
        nb("destructive"), params={"apply": "true", "confirm": "staging"}, environment="staging",
        archive_root=archive_root,
    )  # fmt: skip
    assert out.status is RunStatus.SUCCEEDED, out.error
    assert out.run_dir is not None
    lock = manifest(out.run_dir)["lock"]
    assert lock["environment"] == "staging"
    assert lock["took_over_from"]["run_id"] == stale["run_id"] and lock["took_over_from"]["actor"] == "ghost"
    assert not (locks / "staging.lock").exists()


def test_lock_held_on_another_host_is_refused(archive_root: Path) -> None:
    locks = archive_root / "locks"
    locks.mkdir(parents=True)
    other = {"run_id": "r-elsewhere", "actor": "carol", "since": "2026-11-27T10:00:00+00:00", "pid": 1,
             "host": "some-other-host"}  # fmt: skip
    (locks / "production.lock").write_text(json.dumps(other))
    out = run_procedure(nb("destructive"), environment="production", archive_root=archive_root)
    assert out.status is RunStatus.REFUSED and out.error is not None
    assert "r-elsewhere" in out.error.message and "carol" in out.error.message
    assert json.loads((locks / "production.lock").read_text()) == other  # untouched


def test_dry_run_and_confirmation_through_guard_apply(archive_root: Path) -> None:
    dry = run_procedure(nb("destructive"), archive_root=archive_root)
    assert dry.status is RunStatus.SUCCEEDED and dry.run_dir is not None
    text = json.dumps(notebook(dry.run_dir))
    assert "dry run: nothing was changed in 'sandbox'" in text and "--apply --confirm sandbox" in text
    assert manifest(dry.run_dir)["results"] == {}
    wrong = run_procedure(
        nb("destructive"), params={"apply": "true", "confirm": "production"}, archive_root=archive_root
    )
    assert wrong.run_dir is not None
    assert "not applying to 'sandbox': confirm='production'" in json.dumps(notebook(wrong.run_dir))
    assert manifest(wrong.run_dir)["results"] == {}
