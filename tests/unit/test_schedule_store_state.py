"""Slot claims and open alert incidents kept in the archive's store (conditional objects), so that hosts sharing
only the audit bucket (a Render cron job has no disk) still claim a slot once and resolve what they opened."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from runbooks.archive.objects import LocalObjects
from runbooks.archive.stores import LocalStore
from runbooks.schedule.alerts import incidents
from runbooks.schedule.claims import LocalSlotClaims, ObjectSlotClaims, SlotKey, claims_for

SLOT = SlotKey("production", "nightly-backup", datetime(2026, 11, 30, 3, 17, tzinfo=UTC))


def test_object_claims_claim_a_slot_once_among_concurrent_callers(tmp_path: Path) -> None:
    claims = ObjectSlotClaims(LocalObjects(tmp_path))
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(claims.claim(SLOT, "run"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert claims.record_result(SLOT, run_id="r1", status="succeeded")
    assert not claims.record_result(SLOT, run_id="r2", status="failed")  # a result is written once
    assert claims.result(SLOT) == {"run_id": "r1", "status": "succeeded"}
    assert claims.claimed_slots("production", "nightly-backup") == [SLOT.slot]
    assert claims.claimed_slots("production", "restore-drill") == []


def test_object_claims_and_file_claims_share_one_layout(tmp_path: Path) -> None:
    ObjectSlotClaims(LocalObjects(tmp_path)).claim(SLOT, "run")
    assert LocalSlotClaims(tmp_path).get(SLOT)["action"] == "run"  # type: ignore[index]
    assert isinstance(claims_for(LocalStore(tmp_path)), LocalSlotClaims)
    assert isinstance(claims_for(tmp_path), LocalSlotClaims)


def test_incidents_open_and_resolve_through_the_store_without_deleting(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert incidents.get(store, "production", "nightly-backup") is None
    incidents.open_incident(store, "production", "nightly-backup", "failed", "run-1")
    first = incidents.get(store, "production", "nightly-backup")
    assert first is not None and first["dedup_key"] == "runbooks/production/nightly-backup"
    incidents.open_incident(store, "production", "nightly-backup", "timed_out", "run-2")
    again = incidents.get(store, "production", "nightly-backup")
    assert again is not None and again["since"] == first["since"] and again["last"] == "run-2"
    incidents.close_incident(store, "production", "nightly-backup")
    assert incidents.get(store, "production", "nightly-backup") is None
    stored = store.get("state/alerts/production/nightly-backup.json")  # kept, as a resolved record
    assert stored is not None and b'"resolved"' in stored.data
