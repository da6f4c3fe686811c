"""Archive stores: the scheme registry, conditional objects, leases and conditional rotation state (local)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbooks.archive import lease
from runbooks.archive.lock import LockHeld
from runbooks.archive.objects import LocalObjects, check_key
from runbooks.archive.store import ArchiveError
from runbooks.archive.stores import LocalStore, open_store, register, scheme_of


def test_scheme_of_urls_and_paths() -> None:
    assert scheme_of("s3://spectral-audit/archive") == "s3"
    assert scheme_of("audit:production") == "audit"
    assert scheme_of("/var/lib/runs") == "file"
    assert scheme_of("runs") == "file"
    assert scheme_of("file:///tmp/x") == "file"


def test_open_store_local_default_and_unknown_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(tmp_path / "runs"))
    store = open_store()
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "runs").resolve()
    with pytest.raises(ArchiveError, match="no archive store for the scheme 'gs'"):
        open_store("gs://bucket/prefix")


def test_register_adds_a_store_by_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks.archive import stores

    monkeypatch.setattr(stores, "_REGISTRY", dict(stores._REGISTRY))  # this test's scheme does not outlive it
    made: list[str] = []

    def factory(url: str, environment: str | None) -> LocalStore:
        made.append(url)
        return LocalStore(tmp_path / url.split("://", 1)[1])

    register("memo", factory)
    store = open_store("memo://x", "sandbox")
    assert made == ["memo://x"] and store.root == (tmp_path / "x").resolve()


def test_archive_root_refuses_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks import paths

    monkeypatch.setenv("RUNBOOKS_ARCHIVE", "s3://spectral-audit/archive")
    assert paths.archive_url() == "s3://spectral-audit/archive"
    with pytest.raises(ValueError, match="not a local directory"):
        paths.archive_root()


@pytest.mark.parametrize("key", ["", "../x", "a//b", "/abs", "a/../b", "locks/.hidden"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="unsafe object key"):
        check_key(key)


def test_local_create_if_absent_and_replace_if_match(tmp_path: Path) -> None:
    objs = LocalObjects(tmp_path)
    etag = objs.create_if_absent("slots/a.json", b"one")
    assert etag is not None
    assert objs.create_if_absent("slots/a.json", b"two") is None
    assert objs.get("slots/a.json").data == b"one"  # type: ignore[union-attr]
    assert objs.replace_if_match("slots/a.json", b"stale", "0" * 64) is None
    new = objs.replace_if_match("slots/a.json", b"three", etag)
    assert new is not None and objs.get("slots/a.json").data == b"three"  # type: ignore[union-attr]
    assert objs.replace_if_match("slots/a.json", b"four", etag) is None  # the old etag no longer matches
    assert list(objs.list_keys("slots")) == ["slots/a.json"]


def test_local_concurrent_creates_have_one_winner(tmp_path: Path) -> None:
    objs = LocalObjects(tmp_path)
    barrier = threading.Barrier(16)
    wins: list[int] = []

    def contend(i: int) -> None:
        barrier.wait()
        if objs.create_if_absent("slot.json", str(i).encode()) is not None:
            wins.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and objs.get("slot.json").data == str(wins[0]).encode()  # type: ignore[union-attr]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_lease_refuses_a_live_holder_naming_it_and_is_taken_over_after_expiry(tmp_path: Path) -> None:
    objs, clock = LocalObjects(tmp_path), Clock()
    first = lease.acquire(
        objs, "sandbox", run_id="run-a", actor="alice", where="here", lease=60, clock=clock, renew=False
    )
    with pytest.raises(LockHeld) as refused:
        lease.acquire(objs, "sandbox", run_id="run-b", actor="bob", where="here", lease=60, clock=clock, renew=False)
    msg = str(refused.value)
    assert "run-a" in msg and "alice" in msg and "host" in msg and "expires" in msg
    clock.now += timedelta(seconds=30)
    assert first.renew()  # the holder extends its lease by its length from now
    clock.now += timedelta(seconds=61)
    second = lease.acquire(
        objs, "sandbox", run_id="run-b", actor="bob", where="here", lease=60, clock=clock, renew=False
    )
    assert second.took_over_from is not None and second.took_over_from["run_id"] == "run-a"
    assert not first.renew() and first.lost  # the old holder learns it lost the lock
    first.release()  # does not release someone else's lock
    assert lease.read_holder(objs, "sandbox")["run_id"] == "run-b"  # type: ignore[index]
    second.release()
    assert lease.read_holder(objs, "sandbox")["state"] == "released"  # type: ignore[index]
    third = lease.acquire(objs, "sandbox", run_id="run-c", actor="carol", where="here", clock=clock, renew=False)
    assert third.took_over_from is None  # a released lock is free, not taken over
    third.release()


def test_lease_renews_in_the_background(tmp_path: Path) -> None:
    objs = LocalObjects(tmp_path)
    held = lease.acquire(objs, "staging", run_id="run-a", actor="alice", where="here", lease=0.3)
    try:
        first_expiry = lease.read_holder(objs, "staging")["expires_at"]  # type: ignore[index]
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while lease.read_holder(objs, "staging")["expires_at"] == first_expiry:  # type: ignore[index]
            assert datetime.now(UTC) < deadline, "the lease was never renewed"
            threading.Event().wait(0.05)
    finally:
        held.release()
    assert lease.read_holder(objs, "staging")["state"] == "released"  # type: ignore[index]


def test_rotation_state_two_resumers_cannot_both_proceed(tmp_path: Path) -> None:
    from runbooks.state import rotation as rk

    a = rk.RotationStore.for_environment("staging", tmp_path / "runs")  # (the sandbox's is keyed by its twin)
    b = rk.RotationStore.for_environment("staging", tmp_path / "runs")
    assert a.path == (tmp_path / "runs" / "state" / "rotate-keys" / "staging.json").resolve()
    assert a.load() == {} and b.load() == {}
    a.save({"K": rk.KeyRotation("K", "supabase")})
    with pytest.raises(rk.StateConflict, match="another run wrote the rotation state"):
        b.save({"K": rk.KeyRotation("K", "supabase", completed=["issue"])})
    a.save({"K": rk.KeyRotation("K", "supabase", completed=["issue"])})  # the first keeps going
    assert a.load()["K"].completed == ["issue"]


def _filled(root: Path, n: int) -> LocalStore:
    from runbooks.archive.samples import sample_manifest

    store = LocalStore(root)
    for _ in range(n):
        store.commit(sample_manifest(), {"notebook.ipynb": b"{}"})
    return store


def test_a_mirror_matches_its_anchor_and_a_cut_or_rewritten_tail_does_not(tmp_path: Path) -> None:
    from runbooks.archive.ledger import LedgerEntry
    from runbooks.archive.s3verify import compare_with_anchor, mirror

    anchor = _filled(tmp_path / "anchor", 3)
    copy = LocalStore(tmp_path / "copy")
    assert len(mirror(anchor, copy.archive)) == 3
    assert copy.entries() == anchor.entries() and copy.verify().ok
    assert compare_with_anchor(copy, anchor) == []
    assert mirror(anchor, copy.archive) == []  # up to date: nothing to copy

    ledger = copy.archive.ledger
    entries = ledger.entries()
    ledger.path.write_bytes(b"".join(e.line() for e in entries[:-1]))  # cut the tail, consistently
    ledger.write_head(entries[-2])
    found = compare_with_anchor(copy, anchor)
    assert [f.kind.value for f in found] == ["ledger_truncated"] and found[0].run_id == entries[-1].run_id

    last = entries[-2]
    forged = LedgerEntry.make(last.seq, last.run_id, last.path, "f" * 64, last.prev)
    ledger.path.write_bytes(b"".join(e.line() for e in [*entries[:-2], forged]))
    found = compare_with_anchor(copy, anchor)
    assert {f.kind.value for f in found} == {"anchor_mismatch", "ledger_truncated"}
