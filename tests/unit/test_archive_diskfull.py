"""A full disk (issue 9, item 14): exit 70 only if nothing is recorded; verify on a full disk reports.

The steps of a commit fail with ENOSPC where a full disk makes them fail (injected at the archive's own
writers), and, when the tests may mount one (root on Linux), on a real full tmpfs.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runbooks.archive.index import RunIndex
from runbooks.archive.ledger import Ledger
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive
from runbooks.archive.verify import FindingKind, verify
from runbooks.cli.main import app
from runbooks.runner.run import run_procedure

NB = b'{"cells": [], "nbformat": 4}'
SUCCEED = str(Path(__file__).resolve().parents[1] / "notebooks" / "succeed.ipynb")


def enospc(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def torn_append(self: Ledger, entry: Any) -> None:
    """Half the line reaches the disk, then it is full."""
    with open(self.path, "ab") as f:
        f.write(entry.line()[:40])
    enospc()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "runs")
    a.commit(sample_manifest(), {"notebook.ipynb": NB})
    return a


@pytest.mark.parametrize("fail", [torn_append, enospc])
def test_no_ledger_line_means_nothing_recorded(archive: Archive, monkeypatch: pytest.MonkeyPatch, fail: Any) -> None:
    before = archive.ledger.path.read_bytes()
    monkeypatch.setattr(Ledger, "append", fail)
    with pytest.raises(OSError, match="No space left"):
        archive.commit(sample_manifest(), {"notebook.ipynb": NB})
    monkeypatch.undo()
    assert archive.ledger.path.read_bytes() == before
    assert not archive.intent_path.exists()
    assert len(list(archive.root.glob("[0-9]*/*/*/*"))) == 1  # the earlier run only: no directory left behind
    assert verify(archive).ok


def test_a_committed_run_whose_head_was_not_written_is_reported_and_completed(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Ledger, "write_head", enospc)
    run_dir = archive.commit(sample_manifest(), {"notebook.ipynb": NB})
    monkeypatch.undo()
    assert (run_dir / "run.json").is_file()
    assert any("ledger.head was not updated" in n for n in archive.incomplete)
    assert {f.kind for f in verify(archive).findings} == {FindingKind.INTERRUPTED_COMMIT}
    archive.commit(sample_manifest(), {"notebook.ipynb": NB})  # the next commit completes it
    assert verify(archive).ok


def test_a_run_recorded_without_its_index_row_keeps_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RunIndex, "upsert", enospc)
    out = run_procedure(SUCCEED, archive_root=tmp_path / "runs")
    assert out.exit_code == 0 and out.run_dir is not None
    assert any("index was not updated" in n for n in out.notes)
    monkeypatch.undo()
    assert verify(Archive(tmp_path / "runs")).ok  # the index was dropped: derived, rebuilt on the next read


# --- a real full disk -------------------------------------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs holding an archive with one run, then filled up (root on Linux only)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        a = Archive(mnt / "runs")
        a.commit(sample_manifest(), {"notebook.ipynb": NB})
        (a.root / "index.sqlite").unlink()  # so that `runs verify` would rebuild it: a write on a full disk
        with open(mnt / "filler", "wb") as f, __import__("contextlib").suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_verify_on_a_full_disk_reports(full_disk: Path) -> None:
    result = CliRunner().invoke(app, ["runs", "verify", "--archive", str(full_disk / "runs")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output  # the archive is intact; what could not be done is a note
    assert "1 run(s) checked" in result.output  # what it could not do (if anything) is a note, not a crash


def test_a_run_on_a_full_disk_exits_70_with_nothing_recorded(full_disk: Path) -> None:
    root = full_disk / "runs"
    before = sorted(p.relative_to(root) for p in root.rglob("*") if ".staging" not in p.parts)
    result = CliRunner().invoke(app, ["run", SUCCEED, "--archive", str(root)])
    assert result.exit_code == 70, result.output
    (full_disk / "filler").unlink()
    after = sorted(p.relative_to(root) for p in root.rglob("*") if ".staging" not in p.parts)
    assert [p for p in after if p not in before and p.name not in ("ledger.lock", "locks")] == []
    assert verify(Archive(root)).ok
