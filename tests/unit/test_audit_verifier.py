"""The audit site's incremental verification: the fast path answers "intact" only when the full one would,
and anything else (an old run, an old ledger line, the index, the head, a stray directory) is caught."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from runbooks.archive.layout import iter_run_dirs
from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.store import Archive
from runbooks.audit import verifier
from runbooks.audit.samples import commit_runs, sample_notebook, sample_runs
from runbooks.audit.verifier import Checkpoint, run_dirs, verify_since

N = 8


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "runs")
    commit_runs(a, sample_runs(N, seed=3))
    return a


@pytest.fixture
def checkpoint(archive: Archive) -> Checkpoint:
    report, cp = verify_since(str(archive.root), Checkpoint())
    assert report.ok and report.runs_checked == N and cp.clean and len(cp.runs) == N
    return cp


def add_run(archive: Archive, seed: int = 99) -> str:
    m = next(iter(sample_runs(1, seed=seed)))
    latest = max(e.run_id for e in archive.ledger.entries())  # run ids sort by start time
    start = max(r.started_at for r in sample_runs(N, seed=3)) + timedelta(hours=1 + seed)
    m = m.model_copy(update={"started_at": start, "ended_at": start + timedelta(seconds=5)})
    assert m.run_id != latest
    archive.commit(m, {"notebook.ipynb": sample_notebook(m)})
    return m.run_id


def no_full_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the full verification ran")

    monkeypatch.setattr(verifier, "verify", refuse)


def kinds(report: object) -> set[tuple[str | None, str]]:
    return {(f.run_id, f.kind.value) for f in report.findings}  # type: ignore[attr-defined]


def test_a_new_run_is_verified_alone_on_the_fast_path(
    archive: Archive, checkpoint: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = add_run(archive)
    no_full_verification(monkeypatch)
    report, cp = verify_since(str(archive.root), checkpoint)
    assert report.ok and report.runs_checked == 1 and report.ledger_entries == N + 1
    assert cp.clean and cp.count == N + 1 and rid in cp.runs and cp.size == archive.ledger.size()
    again, _ = verify_since(str(archive.root), cp)
    assert again.ok and again.runs_checked == 0


def test_full_rehashes_every_run_even_with_a_checkpoint(archive: Archive, checkpoint: Checkpoint) -> None:
    report, _ = verify_since(str(archive.root), checkpoint, full=True)
    assert report.ok and report.runs_checked == N


def test_an_old_run_edited_before_a_new_run_is_caught(archive: Archive, checkpoint: Checkpoint) -> None:
    old = archive.ledger.entries()[2]
    nb = archive.root / old.path / "notebook.ipynb"
    nb.write_bytes(nb.read_bytes().replace(b"rows", b"ROWS"))
    add_run(archive)
    report, cp = verify_since(str(archive.root), checkpoint)
    assert kinds(report) == {(old.run_id, "file_edited")}
    assert report.runs_checked == 2  # the edited run and the new one; the others' signatures are unchanged
    assert not cp.clean and old.run_id not in cp.runs  # no fast path next time; the edited run is re-hashed


def test_an_old_ledger_line_edited_is_caught(archive: Archive, checkpoint: Checkpoint) -> None:
    lines = archive.ledger.path.read_bytes().splitlines(keepends=True)
    old = LedgerEntry.model_validate_json(lines[1])
    forged = old.model_copy(update={"manifest_sha256": "0" * 64})
    lines[1] = forged.line()
    archive.ledger.path.write_bytes(b"".join(lines))
    add_run(archive)
    report, _ = verify_since(str(archive.root), checkpoint)
    assert (old.run_id, "ledger_entry_edited") in kinds(report)


def test_a_forged_tail_entry_is_caught(archive: Archive, checkpoint: Checkpoint) -> None:
    last = archive.ledger.entries()[-1]
    forged = LedgerEntry.make(last.seq + 1, "forged-run", "2026/01/01/forged-run", "0" * 64, "f" * 64)
    with archive.ledger.path.open("ab") as f:
        f.write(forged.line())
    report, _ = verify_since(str(archive.root), checkpoint)
    assert ("forged-run", "chain_broken") in kinds(report)


def test_an_old_index_row_edited_is_caught(archive: Archive, checkpoint: Checkpoint) -> None:
    old = archive.ledger.entries()[3]
    with sqlite3.connect(archive.index.path) as conn:
        conn.execute("UPDATE runs SET actor = 'someone-else' WHERE run_id = ?", (old.run_id,))
    conn.close()
    add_run(archive)
    report, _ = verify_since(str(archive.root), checkpoint)
    assert (old.run_id, "index_mismatch") in kinds(report)


def test_a_stray_run_directory_and_a_cut_tail_are_caught(archive: Archive, checkpoint: Checkpoint) -> None:
    (archive.root / "2026" / "01" / "01" / "stray").mkdir(parents=True)
    report, _ = verify_since(str(archive.root), checkpoint)
    assert ("stray", "unknown_run_dir") in kinds(report)
    (archive.root / "2026" / "01" / "01" / "stray").rmdir()
    add_run(archive)
    data = archive.ledger.path.read_bytes()
    archive.ledger.path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1])  # the new entry cut off
    report, _ = verify_since(str(archive.root), checkpoint)
    assert "ledger_truncated" in {k for _, k in kinds(report)}


def test_a_checkpoint_that_is_not_one_means_a_full_verification(archive: Archive, tmp_path: Path) -> None:
    for text in ("", "[]", '{"size": "1"}', '{"runs": {"a": [1, 2]}}', '{"unknown": 1}'):
        (tmp_path / "cp.json").write_text(text)
        assert not Checkpoint.load(tmp_path / "cp.json").clean
    report, _ = verify_since(str(archive.root), Checkpoint.load(tmp_path / "missing.json"))
    assert report.ok and report.runs_checked == N


def test_the_fast_listing_of_run_directories_is_the_layouts(archive: Archive) -> None:
    (archive.root / "2026" / "xx" / "01" / "not-a-run").mkdir(parents=True)
    assert run_dirs(str(archive.root)) == {rel for rel, _ in iter_run_dirs(archive.root)}
