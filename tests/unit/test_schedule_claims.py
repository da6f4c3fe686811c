"""Slot claims: created once, even under concurrent claimants (threads and processes); listed and read back."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbooks.schedule.claims import LocalSlotClaims, SlotKey

SLOT = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)
KEY = SlotKey("sandbox", "check-dns-posture", SLOT)


def test_a_slot_is_claimed_once_and_read_back(tmp_path: Path) -> None:
    claims = LocalSlotClaims(tmp_path)
    assert claims.claim(KEY, "run", at="x") is True
    assert claims.claim(KEY, "run") is False
    got = claims.get(KEY)
    assert got is not None and got["action"] == "run" and got["slot"] == SLOT.isoformat()
    assert (tmp_path / "schedule/claims/sandbox/check-dns-posture/20261130T0330Z.json").is_file()
    assert claims.record_result(KEY, run_id="r1", status="succeeded") is True
    assert claims.record_result(KEY, run_id="r2", status="failed") is False
    assert claims.result(KEY) == {"run_id": "r1", "status": "succeeded"}
    assert claims.claimed_slots("sandbox", "check-dns-posture") == [SLOT]
    assert claims.claimed_slots("sandbox", "nightly-backup") == []
    assert not list((tmp_path / "schedule/claims/sandbox/check-dns-posture").glob(".claim-*"))


def test_threads_racing_for_a_slot_yield_one_winner(tmp_path: Path) -> None:
    claims = LocalSlotClaims(tmp_path)
    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(lambda _: claims.claim(KEY, "run"), range(64)))
    assert wins.count(True) == 1


CLAIM = (
    "import sys\n"
    "from datetime import datetime\n"
    "from pathlib import Path\n"
    "from runbooks.schedule.claims import LocalSlotClaims, SlotKey\n"
    "key = SlotKey('sandbox', 'check-dns-posture', datetime.fromisoformat(sys.argv[2]))\n"
    "print(LocalSlotClaims(Path(sys.argv[1])).claim(key, 'run'))\n"
)


def test_processes_racing_for_a_slot_yield_one_winner(tmp_path: Path) -> None:
    # plain subprocesses (not a multiprocessing pool: a spawned pool inside a pytest-xdist worker can hang)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path), SLOT.isoformat()], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    wins = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8
    assert wins.count("True") == 1 and wins.count("False") == 7


def test_keys_cannot_escape_the_claims_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad claim key"):
        LocalSlotClaims(tmp_path).create_if_absent("../../etc/x", b"")
