"""The ledger file: entry hashing, tail reading on long files, torn-line repair, head anchor."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from runbooks.archive.ledger import GENESIS, Ledger, LedgerEntry


def chain(ledger: Ledger, n: int) -> list[LedgerEntry]:
    out = []
    for i in range(n):
        e = ledger.next_entry(f"run-{i:05d}", f"2026/11/27/run-{i:05d}", f"{i:064x}")
        ledger.append(e)
        ledger.write_head(e)
        out.append(e)
    return out


def test_entry_hash_covers_every_field() -> None:
    e = LedgerEntry.make(1, "r", "p/r", "a" * 64, GENESIS)
    assert e.hash == e.expected_hash()
    for change in ({"seq": 2}, {"run_id": "s"}, {"path": "p/s"}, {"manifest_sha256": "b" * 64}, {"prev": "c" * 64}):
        assert e.model_copy(update=change).expected_hash() != e.hash


def test_entries_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        LedgerEntry.model_validate({**LedgerEntry.make(1, "r", "p", "a", GENESIS).model_dump(), "note": "x"})


def test_next_entry_chains_from_head(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    entries = chain(ledger, 3)
    assert ledger.entries() == entries
    assert entries[0].prev == GENESIS
    head = ledger.read_head()
    assert head is not None and (head.count, head.hash) == (3, entries[-1].hash)
    # the head is authoritative: with the last line cut, the next entry still chains to seq 3
    ledger.path.write_bytes(b"".join(ledger.path.read_bytes().splitlines(keepends=True)[:-1]))
    assert ledger.next_entry("x", "x", "0").seq == 4


def test_next_entry_without_head_uses_last_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    entries = chain(ledger, 2)
    ledger.head_path.unlink()
    nxt = ledger.next_entry("x", "x", "0")
    assert (nxt.seq, nxt.prev) == (3, entries[-1].hash)


def test_tail_on_a_long_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    entries = chain(ledger, 600)  # > 64 KiB: the tail reader must not need the whole file
    assert ledger.path.stat().st_size > 1 << 16
    assert ledger.tail() == (entries[-1], False)
    with open(ledger.path, "ab") as f:
        f.write(b'{"hash":"12')
    assert ledger.tail() == (entries[-1], True)


def test_drop_partial_tail_only_removes_own_torn_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    chain(ledger, 2)
    intact = ledger.path.read_bytes()
    mine = LedgerEntry.make(3, "r", "p", "a" * 64, GENESIS)
    with open(ledger.path, "ab") as f:
        f.write(b"garbage")
    assert ledger.drop_partial_tail(only_prefix_of=mine.line()) == 0
    assert ledger.drop_partial_tail() == len(b"garbage")
    assert ledger.path.read_bytes() == intact
    with open(ledger.path, "ab") as f:
        f.write(mine.line()[:30])
    assert ledger.drop_partial_tail(only_prefix_of=mine.line()) == 30
    assert ledger.path.read_bytes() == intact


def test_append_after_stray_partial_starts_a_new_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    chain(ledger, 1)
    with open(ledger.path, "ab") as f:
        f.write(b"{cut")
    e = ledger.next_entry("y", "y", "0")
    ledger.append(e)
    lines = ledger.lines()
    assert [ln.entry is not None for ln in lines] == [True, False, True]
    assert lines[-1].entry == e and lines[-1].terminated
