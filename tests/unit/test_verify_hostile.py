"""runs verify on a hostile ledger (issue 9, item 13): linear time, bounded memory, a finding instead of a crash."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from runbooks.archive.ledger import GENESIS, LedgerEntry
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive
from runbooks.archive.verify import MAX_FINDINGS_PER_KIND, FindingKind, verify

NB = b'{"cells": [], "nbformat": 4}'


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "runs")
    for _ in range(2):
        a.commit(sample_manifest(), {"notebook.ipynb": NB})
    assert verify(a).ok
    return a


def _append(a: Archive, data: bytes) -> None:
    with open(a.ledger.path, "ab") as f:
        f.write(data)


def _bounded(a: Archive, seconds: float, peak_mib: float) -> list[tuple[FindingKind, str]]:
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        report = verify(a)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.monotonic() - t0
    assert elapsed < seconds, f"verify took {elapsed:.1f}s"
    assert peak < peak_mib * 2**20, f"verify peaked at {peak / 2**20:.0f} MiB"
    assert not report.ok
    return [(f.kind, f.detail) for f in report.findings]


def test_a_huge_seq_is_a_finding_not_a_hang(archive: Archive) -> None:
    last = archive.ledger.entries()[-1]
    huge = 10**30
    _append(archive, LedgerEntry.make(huge, "20261127T000000Z-x-abcdef", "2026/11/27/x", "0" * 64, last.hash).line())
    found = _bounded(archive, seconds=10, peak_mib=50)
    gap = [d for k, d in found if k is FindingKind.LEDGER_GAP]
    assert len(gap) == 1 and "are missing" in gap[0] and "digits" in gap[0]  # one range, not 10**30 rows
    assert any(k is FindingKind.HEAD_MISMATCH for k, _ in found)


def test_a_gigantic_line_is_read_in_bounded_memory(archive: Archive) -> None:
    _append(archive, b'{"seq": 3, "junk": "' + b"x" * (64 * 2**20) + b'"}\n')
    found = _bounded(archive, seconds=30, peak_mib=40)
    (bad,) = [d for k, d in found if k is FindingKind.LEDGER_MALFORMED_LINE]
    assert "line 3" in bad and "bytes" in bad


def test_an_unterminated_gigantic_tail_is_a_partial_line(archive: Archive) -> None:
    _append(archive, b"y" * (32 * 2**20))
    found = _bounded(archive, seconds=30, peak_mib=40)
    assert [k for k, _ in found] == [FindingKind.LEDGER_PARTIAL_LINE]


def test_many_garbage_lines_are_counted_not_listed(archive: Archive) -> None:
    _append(archive, b"garbage\n" * 200_000)
    found = _bounded(archive, seconds=60, peak_mib=60)
    malformed = [d for k, d in found if k is FindingKind.LEDGER_MALFORMED_LINE]
    assert len(malformed) == MAX_FINDINGS_PER_KIND + 1
    assert "200000 in all" in malformed[-1]


def test_a_forged_chain_of_many_entries_stays_linear(tmp_path: Path) -> None:
    a = Archive(tmp_path / "runs")
    a.root.mkdir()
    prev, lines = GENESIS, []
    for seq in range(1, 100_001):
        e = LedgerEntry.make(seq, f"20261127T000000Z-f-{seq:06x}", f"2026/11/27/f{seq}", "0" * 64, prev)
        lines.append(e.line())
        prev = e.hash
    a.ledger.path.write_bytes(b"".join(lines))
    a.ledger.head_path.write_text(json.dumps({"count": 100_000, "hash": prev}))
    report = verify(a)
    missing = [f for f in report.findings if f.kind is FindingKind.RUN_DIR_MISSING]
    assert len(missing) == MAX_FINDINGS_PER_KIND + 1 and "100000 in all" in missing[-1].detail
    assert report.ledger_entries == 100_000
