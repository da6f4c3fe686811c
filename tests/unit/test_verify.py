"""verify: each kind of tampering is detected and attributed to the right run id."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive
from runbooks.archive.verify import FindingKind, verify

NB = b'{"cells": [{"cell_type": "code", "source": "1 + 1"}], "nbformat": 4}'


def rd(archive: Archive, run_id: str) -> Path:
    """The run's directory (asserting that the archive knows it)."""
    d = archive.run_dir(run_id)
    assert d is not None
    return d


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path)
    for _ in range(4):
        a.commit(sample_manifest(), {"notebook.ipynb": NB})
    assert verify(a).ok
    return a


def run_ids(a: Archive) -> list[str]:
    return [e.run_id for e in a.ledger.entries()]


def pairs(a: Archive, run_id: str | None = None) -> set[tuple[str | None, FindingKind]]:
    return {(f.run_id, f.kind) for f in verify(a, run_id).findings}


def ledger_lines(a: Archive) -> list[bytes]:
    return a.ledger.path.read_bytes().splitlines(keepends=True)


def test_clean_archive_is_ok(archive: Archive) -> None:
    report = verify(archive)
    assert report.ok and report.runs_checked == 4 and report.ledger_entries == 4


def test_empty_or_missing_archive_is_ok(tmp_path: Path) -> None:
    assert verify(Archive(tmp_path / "nowhere")).ok


def test_edited_notebook_byte(archive: Archive) -> None:
    rid = run_ids(archive)[1]
    nb = rd(archive, rid) / "notebook.ipynb"
    data = bytearray(nb.read_bytes())
    data[20] ^= 0x01
    nb.write_bytes(bytes(data))
    assert pairs(archive) == {(rid, FindingKind.FILE_EDITED)}
    assert not verify(archive, rid).ok
    assert verify(archive, run_ids(archive)[0]).ok


def test_edited_manifest(archive: Archive) -> None:
    rid = run_ids(archive)[2]
    mpath = rd(archive, rid) / "run.json"
    data = json.loads(mpath.read_bytes())
    data["status"] = "failed"
    mpath.write_text(json.dumps(data))
    assert pairs(archive) == {(rid, FindingKind.MANIFEST_EDITED)}


def test_edited_manifest_with_file_hash_updated_too(archive: Archive) -> None:
    # edit the notebook and make run.json agree with it: the ledger still catches the manifest
    rid = run_ids(archive)[0]
    d = rd(archive, rid)
    (d / "notebook.ipynb").write_bytes(b"{}")
    data = json.loads((d / "run.json").read_bytes())
    data["files"]["notebook.ipynb"] = "0" * 64
    (d / "run.json").write_text(json.dumps(data))
    assert (rid, FindingKind.MANIFEST_EDITED) in pairs(archive)


def test_deleted_run_dir(archive: Archive) -> None:
    rid = run_ids(archive)[1]
    shutil.rmtree(rd(archive, rid))
    assert pairs(archive) == {(rid, FindingKind.RUN_DIR_MISSING)}


def test_swapped_ledger_lines(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    lines[1], lines[2] = lines[2], lines[1]
    archive.ledger.path.write_bytes(b"".join(lines))
    assert pairs(archive) == {(ids[1], FindingKind.LEDGER_REORDERED), (ids[2], FindingKind.LEDGER_REORDERED)}


def test_dropped_last_ledger_line(archive: Archive) -> None:
    ids = run_ids(archive)
    archive.ledger.path.write_bytes(b"".join(ledger_lines(archive)[:-1]))
    found = pairs(archive)
    assert (None, FindingKind.LEDGER_TRUNCATED) in found
    assert (ids[-1], FindingKind.UNKNOWN_RUN_DIR) in found
    assert {rid for rid, _ in found} == {None, ids[-1]}


def test_dropped_last_line_and_its_directory(archive: Archive) -> None:
    # a thorough forger removes both: only the head anchor tells
    ids = run_ids(archive)
    shutil.rmtree(rd(archive, ids[-1]))
    archive.ledger.path.write_bytes(b"".join(ledger_lines(archive)[:-1]))
    # the index still has its row
    assert pairs(archive) == {(None, FindingKind.LEDGER_TRUNCATED), (ids[-1], FindingKind.INDEX_MISMATCH)}
    archive.reindex()
    assert pairs(archive) == {(None, FindingKind.LEDGER_TRUNCATED)}


def test_partial_last_ledger_line(archive: Archive) -> None:
    ids = run_ids(archive)
    data = archive.ledger.path.read_bytes()
    archive.ledger.path.write_bytes(data[:-60])  # cut the last line in its middle
    found = pairs(archive)
    assert (ids[-1], FindingKind.LEDGER_PARTIAL_LINE) in found
    assert (None, FindingKind.LEDGER_TRUNCATED) in found


def test_deleted_middle_ledger_line(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    del lines[1]
    archive.ledger.path.write_bytes(b"".join(lines))
    found = pairs(archive)
    assert (ids[2], FindingKind.LEDGER_GAP) in found
    assert (ids[1], FindingKind.UNKNOWN_RUN_DIR) in found


def test_edited_ledger_entry(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    entry = json.loads(lines[1])
    entry["manifest_sha256"] = "f" * 64
    lines[1] = json.dumps(entry).encode() + b"\n"
    archive.ledger.path.write_bytes(b"".join(lines))
    found = pairs(archive)
    assert (ids[1], FindingKind.LEDGER_ENTRY_EDITED) in found
    assert (ids[1], FindingKind.MANIFEST_EDITED) in found


def test_rehashed_ledger_entry_breaks_the_chain(archive: Archive) -> None:
    # the forger recomputes the edited entry's own hash: the next entry's prev no longer matches
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    old = LedgerEntry.model_validate_json(lines[1])
    forged = LedgerEntry.make(old.seq, old.run_id, old.path, "f" * 64, old.prev)
    lines[1] = forged.line()
    archive.ledger.path.write_bytes(b"".join(lines))
    found = pairs(archive)
    assert (ids[2], FindingKind.CHAIN_BROKEN) in found
    assert (ids[1], FindingKind.MANIFEST_EDITED) in found


def test_rewritten_last_entry_disagrees_with_head(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    old = LedgerEntry.model_validate_json(lines[-1])
    lines[-1] = LedgerEntry.make(old.seq, old.run_id, old.path, "e" * 64, old.prev).line()
    archive.ledger.path.write_bytes(b"".join(lines))
    assert (ids[-1], FindingKind.HEAD_MISMATCH) in pairs(archive)


def test_missing_head(archive: Archive) -> None:
    archive.ledger.head_path.unlink()
    assert pairs(archive) == {(None, FindingKind.HEAD_MISMATCH)}


def test_unknown_run_dir(archive: Archive) -> None:
    src = rd(archive, run_ids(archive)[0])
    planted = src.parent / "20261127T000000Z-forged-abcdef"
    shutil.copytree(src, planted)
    assert pairs(archive) == {("20261127T000000Z-forged-abcdef", FindingKind.UNKNOWN_RUN_DIR)}


def test_missing_and_extra_file(archive: Archive) -> None:
    a, b = run_ids(archive)[:2]
    (rd(archive, a) / "notebook.ipynb").unlink()
    (rd(archive, b) / "smuggled.txt").write_text("x")
    assert pairs(archive) == {(a, FindingKind.FILE_MISSING), (b, FindingKind.FILE_EXTRA)}


def test_invalid_manifest(archive: Archive) -> None:
    rid = run_ids(archive)[0]
    (rd(archive, rid) / "run.json").write_text("not json")
    assert pairs(archive) == {(rid, FindingKind.MANIFEST_EDITED), (rid, FindingKind.MANIFEST_INVALID)}


def test_verify_one_run_reports_only_that_run(archive: Archive) -> None:
    a, b = run_ids(archive)[:2]
    (rd(archive, a) / "notebook.ipynb").write_bytes(b"{}")
    report = verify(archive, b)
    assert report.ok and report.runs_checked == 1
    assert {f.kind for f in verify(archive, a).findings} == {FindingKind.FILE_EDITED}


def test_edited_status_in_the_index(archive: Archive) -> None:
    rid = run_ids(archive)[2]
    with sqlite3.connect(archive.index.path) as conn:
        conn.execute("UPDATE runs SET status = 'failed' WHERE run_id = ?", (rid,))
    conn.close()
    report = verify(archive)
    assert {(f.run_id, f.kind) for f in report.findings} == {(rid, FindingKind.INDEX_MISMATCH)}
    (finding,) = report.findings
    assert "status" in finding.detail and "runbooks runs reindex" in finding.detail
    archive.reindex()
    assert verify(archive).ok


def test_edited_manifest_column_in_the_index(archive: Archive) -> None:
    rid = run_ids(archive)[0]
    with sqlite3.connect(archive.index.path) as conn:
        conn.execute("UPDATE runs SET manifest = replace(manifest, 'tester', 'someone') WHERE run_id = ?", (rid,))
    conn.close()
    assert pairs(archive) == {(rid, FindingKind.INDEX_MISMATCH)}


def test_deleted_and_extra_index_rows(archive: Archive) -> None:
    ids = run_ids(archive)
    with sqlite3.connect(archive.index.path) as conn:
        conn.execute("DELETE FROM runs WHERE run_id = ?", (ids[1],))
        row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (ids[3],)).fetchone()
        conn.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(row))})", ("20990101T000000Z-x-abcdef", *row[1:]))
    conn.close()
    report = verify(archive)
    assert {(f.run_id, f.kind) for f in report.findings} == {
        (ids[1], FindingKind.INDEX_MISMATCH),
        ("20990101T000000Z-x-abcdef", FindingKind.INDEX_MISMATCH),
    }
    assert all("runbooks runs reindex" in f.detail for f in report.findings)
    assert pairs(archive, ids[1]) == {(ids[1], FindingKind.INDEX_MISMATCH)}


def test_missing_index_is_not_a_finding(archive: Archive) -> None:
    archive.index.path.unlink()
    assert verify(archive).ok  # derived data: `runs list` rebuilds it


def test_unknown_run_id_is_a_finding(archive: Archive) -> None:
    report = verify(archive, "20990101T000000Z-nothing-000000")
    assert not report.ok and report.runs_checked == 0
    assert pairs(archive, "20990101T000000Z-nothing-000000") == {
        ("20990101T000000Z-nothing-000000", FindingKind.RUN_NOT_IN_LEDGER)
    }


def test_run_whose_ledger_line_and_directory_were_deleted(archive: Archive) -> None:
    ids = run_ids(archive)
    shutil.rmtree(rd(archive, ids[1]))
    lines = ledger_lines(archive)
    del lines[1]
    archive.ledger.path.write_bytes(b"".join(lines))
    found = pairs(archive, ids[1])
    assert (ids[1], FindingKind.RUN_NOT_IN_LEDGER) in found and (ids[1], FindingKind.INDEX_MISMATCH) in found


def test_duplicated_ledger_line(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    lines.insert(2, lines[1])
    archive.ledger.path.write_bytes(b"".join(lines))
    found = pairs(archive)
    assert (ids[1], FindingKind.LEDGER_DUPLICATE) in found
    assert (None, FindingKind.LEDGER_DUPLICATE) in found  # its seq too
    assert {rid for rid, _ in found} <= {None, ids[1], ids[2]}


def test_duplicated_last_ledger_line(archive: Archive) -> None:
    ids = run_ids(archive)
    lines = ledger_lines(archive)
    archive.ledger.path.write_bytes(b"".join([*lines, lines[-1]]))
    found = pairs(archive)
    assert (ids[-1], FindingKind.LEDGER_DUPLICATE) in found
    assert not verify(archive).ok
