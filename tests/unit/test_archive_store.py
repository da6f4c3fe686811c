"""Archive.commit: round trip, layout, refusals, crash recovery at each instant, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from runbooks.archive.canonical import sha256_hex
from runbooks.archive.ledger import GENESIS, Ledger
from runbooks.archive.manifest import RunManifest, RunStatus
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive, ArchiveError
from runbooks.archive.verify import FindingKind, verify

NB = b'{"cells": [], "nbformat": 4}'


def test_round_trip(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    m = sample_manifest(results={"rows": 3, "summary": {"pass": 2, "fail": 1}})
    run_dir = archive.commit(m, {"notebook.ipynb": NB, "extra/log.txt": b"hello"})

    day = m.started_at.astimezone(UTC)
    assert run_dir == tmp_path / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / m.run_id
    assert (run_dir / "notebook.ipynb").read_bytes() == NB
    assert (run_dir / "extra" / "log.txt").read_bytes() == b"hello"
    stored = RunManifest.model_validate_json((run_dir / "run.json").read_bytes())
    assert stored.files == {"notebook.ipynb": sha256_hex(NB), "extra/log.txt": sha256_hex(b"hello")}
    assert stored.model_dump(exclude={"files"}) == m.model_dump(exclude={"files"})
    assert archive.read_manifest(m.run_id) == stored

    (entry,) = Ledger(tmp_path).entries()
    assert entry.seq == 1 and entry.prev == GENESIS and entry.run_id == m.run_id
    assert entry.manifest_sha256 == sha256_hex((run_dir / "run.json").read_bytes())
    assert entry.hash == entry.expected_hash()
    head = Ledger(tmp_path).read_head()
    assert head is not None and head.model_dump() == {"count": 1, "hash": entry.hash}
    assert [r.run_id for r in archive.index.query()] == [m.run_id]
    assert not (tmp_path / ".staging").exists() or not any((tmp_path / ".staging").iterdir())
    assert verify(archive).ok


def test_run_json_is_canonical(tmp_path: Path) -> None:
    run_dir = Archive(tmp_path).commit(sample_manifest(), {})
    raw = (run_dir / "run.json").read_bytes()
    assert raw.endswith(b"\n")
    data = json.loads(raw)
    assert raw == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    assert data["files"] == {}


def test_chain_links_successive_runs(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    for _ in range(3):
        archive.commit(sample_manifest(), {"notebook.ipynb": NB})
    entries = Ledger(tmp_path).entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.prev for e in entries[1:]] == [e.hash for e in entries[:-1]]


def test_date_directory_is_utc_of_start(tmp_path: Path) -> None:
    # 23:30 on Nov 30 at UTC-5 is Dec 1 in UTC
    start = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    run_dir = Archive(tmp_path).commit(sample_manifest(started_at=start), {})
    assert run_dir.relative_to(tmp_path).parts[:3] == ("2026", "12", "01")


def test_new_run_id_sortable_and_unique() -> None:
    t0 = datetime(2026, 11, 27, 11, 22, 33, tzinfo=UTC)
    rid = Archive.new_run_id("check-dns-posture", now=t0)
    assert re.fullmatch(r"20261127T112233Z-check-dns-posture-[0-9a-f]{6}", rid)
    assert Archive.new_run_id("notebooks/Restore DB.ipynb", now=t0).startswith("20261127T112233Z-restore-db-")
    later = Archive.new_run_id("a", now=t0 + timedelta(seconds=1))
    assert sorted([later, rid]) == [rid, later]
    # within one second the 6 hex digits tell runs apart: 200 ids are (nearly) all distinct. Not "all": 24 random
    # bits give two equal suffixes among 200 about once in 800 runs of this test (committing refuses to overwrite)
    assert len({Archive.new_run_id("x", now=t0) for _ in range(200)}) >= 195


def test_refuses_to_overwrite_existing_run(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    m = sample_manifest()
    run_dir = archive.commit(m, {"notebook.ipynb": NB})
    with pytest.raises(ArchiveError, match="already archived"):
        archive.commit(m, {"notebook.ipynb": b"other"})
    assert (run_dir / "notebook.ipynb").read_bytes() == NB
    assert len(Ledger(tmp_path).entries()) == 1


@pytest.mark.parametrize("name", ["../escape", "/abs", "run.json", "a/../../b", ""])
def test_refuses_unsafe_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        Archive(tmp_path).commit(sample_manifest(), {name: b"x"})
    assert not Ledger(tmp_path).entries()


def test_refuses_unsafe_run_id(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="unsafe run id"):
        Archive(tmp_path).commit(sample_manifest(run_id="../x"), {})


def test_locks_dir_and_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(tmp_path / "arch"))
    archive = Archive()
    assert archive.root == (tmp_path / "arch").resolve()
    assert archive.locks_dir == archive.root / "locks" and archive.locks_dir.is_dir()


# -- crash at each instant ----------------------------------------------------------------------


class Crash(Exception):
    pass


def _crash(*_args: object, **_kwargs: object) -> None:
    raise Crash


def test_crash_while_staging_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path)
    monkeypatch.setattr("runbooks.archive.store._fsync_tree", _crash)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {"notebook.ipynb": NB})
    assert any((tmp_path / ".staging").iterdir())  # left behind by the crash
    assert verify(archive).ok  # ignored: not a run
    monkeypatch.undo()
    archive.commit(sample_manifest(), {})
    assert not any((tmp_path / ".staging").iterdir())  # cleaned
    assert [e.seq for e in Ledger(tmp_path).entries()] == [1]
    assert verify(archive).ok


def test_crash_before_rename_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path)
    monkeypatch.setattr("runbooks.archive.store.os.rename", _crash)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {"notebook.ipynb": NB})
    assert archive.intent_path.exists()
    report = verify(archive)
    assert [(f.run_id, f.kind) for f in report.findings] == [(m.run_id, FindingKind.INTERRUPTED_COMMIT)]
    monkeypatch.undo()
    assert "rolled back" in (archive.recover() or "")
    assert not archive.intent_path.exists()
    assert archive.run_dir(m.run_id) is None
    assert verify(archive).ok


def test_crash_after_rename_before_ledger_is_rolled_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path)
    first = sample_manifest()
    archive.commit(first, {})
    monkeypatch.setattr(Ledger, "append", _crash)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {"notebook.ipynb": NB})
    monkeypatch.undo()
    # the directory is in place but the ledger does not know it yet: reported as an interrupted commit only
    report = verify(archive)
    assert [(f.run_id, f.kind) for f in report.findings] == [(m.run_id, FindingKind.INTERRUPTED_COMMIT)]
    nxt = sample_manifest()
    archive.commit(nxt, {})  # completes the interrupted one first
    assert [e.run_id for e in Ledger(tmp_path).entries()] == [first.run_id, m.run_id, nxt.run_id]
    assert {r.run_id for r in archive.index.query()} == {first.run_id, m.run_id, nxt.run_id}
    assert verify(archive).ok


def test_torn_ledger_append_is_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path)
    archive.commit(sample_manifest(), {})

    def torn_append(self: Ledger, entry: object) -> None:
        with open(self.path, "ab") as f:
            f.write(entry.line()[:40])  # type: ignore[attr-defined]
        raise Crash

    monkeypatch.setattr(Ledger, "append", torn_append)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {})
    monkeypatch.undo()
    kinds = {f.kind for f in verify(archive).findings}
    assert FindingKind.INTERRUPTED_COMMIT in kinds and FindingKind.LEDGER_PARTIAL_LINE in kinds
    archive.recover()
    assert [e.seq for e in Ledger(tmp_path).entries()] == [1, 2]
    assert verify(archive).ok


def test_crash_after_ledger_before_head_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path)
    monkeypatch.setattr(Ledger, "write_head", _crash)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {})
    monkeypatch.undo()
    archive.recover()
    assert len(Ledger(tmp_path).entries()) == 1  # not appended twice
    head = Ledger(tmp_path).read_head()
    assert head is not None and head.count == 1
    assert verify(archive).ok


def test_foreign_partial_line_is_kept_as_evidence(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    archive.commit(sample_manifest(), {})
    with open(tmp_path / "ledger.jsonl", "ab") as f:
        f.write(b'{"garbage": tru')
    archive.commit(sample_manifest(), {})  # still archives, on a fresh line
    assert len(Ledger(tmp_path).entries()) == 2
    kinds = [f.kind for f in verify(archive).findings]
    assert kinds == [FindingKind.LEDGER_MALFORMED_LINE]


# -- concurrent writers -------------------------------------------------------------------------


def _commit_many(root: str, n: int) -> list[str]:
    archive = Archive(Path(root))
    out = []
    for i in range(n):
        m = sample_manifest(f"proc-{os.getpid()}", status=RunStatus.FAILED if i % 2 else RunStatus.SUCCEEDED)
        archive.commit(m, {"notebook.ipynb": NB + str(i).encode()})
        out.append(m.run_id)
    return out


def test_concurrent_commits_from_processes_keep_a_valid_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_commit_many, [(str(tmp_path), 6)] * 4)
    run_ids = {r for batch in results for r in batch}
    assert len(run_ids) == 24
    entries = Ledger(tmp_path).entries()
    assert [e.seq for e in entries] == list(range(1, 25))
    assert {e.run_id for e in entries} == run_ids
    assert Archive(tmp_path).index.count() == 24
    report = verify(Archive(tmp_path))
    assert report.ok, report.findings
    assert report.runs_checked == 24


def test_broken_index_never_blocks_a_commit(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    archive.commit(sample_manifest(), {})
    archive.index.path.write_bytes(b"this is not a sqlite database" * 100)
    m = sample_manifest()
    archive.commit(m, {"notebook.ipynb": NB})
    assert [e.run_id for e in Ledger(tmp_path).entries()][-1] == m.run_id
    assert not archive.index.exists()  # dropped, to be rebuilt
    archive.reindex()
    assert archive.index.count() == 2
    assert verify(archive).ok


def test_interrupted_commit_with_unreadable_manifest_is_still_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path)
    monkeypatch.setattr(Ledger, "append", _crash)
    m = sample_manifest()
    with pytest.raises(Crash):
        archive.commit(m, {})
    monkeypatch.undo()
    run_dir = next(tmp_path.glob(f"*/*/*/{m.run_id}"))
    (run_dir / "run.json").write_text("{broken")
    archive.recover()  # does not get stuck on the broken manifest
    assert [e.run_id for e in Ledger(tmp_path).entries()] == [m.run_id]
    assert {(f.run_id, f.kind) for f in verify(archive).findings} == {
        (m.run_id, FindingKind.MANIFEST_EDITED),
        (m.run_id, FindingKind.MANIFEST_INVALID),
    }
    archive.commit(sample_manifest(), {})  # and later commits proceed


def _commit_forever(root: str) -> None:
    archive = Archive(Path(root))
    i = 0
    while True:
        archive.commit(sample_manifest("killed"), {"notebook.ipynb": NB * (1 + i % 50), "log.txt": b"x" * i})
        i += 1


def test_sigkill_at_random_instants_leaves_whole_runs_only(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    for _ in range(4):
        before = len(Ledger(tmp_path).entries())
        proc = ctx.Process(target=_commit_forever, args=(str(tmp_path),))
        proc.start()
        deadline = time.monotonic() + 30
        while len(Ledger(tmp_path).lines()) <= before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()  # SIGKILL: no cleanup, no finally, the lock dies with the process
        proc.join()
        archive = Archive(tmp_path)
        archive.recover()
        report = verify(archive)
        assert report.ok, report.findings
        on_disk = {p.name for p in tmp_path.glob("*/*/*/*")}
        assert on_disk == {e.run_id for e in Ledger(tmp_path).entries()}
    assert len(Ledger(tmp_path).entries()) >= 4


def test_concurrent_commits_from_threads(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: Archive(tmp_path).commit(sample_manifest(), {"n.txt": str(i).encode()}), range(32)))
    assert [e.seq for e in Ledger(tmp_path).entries()] == list(range(1, 33))
    assert verify(Archive(tmp_path)).ok
