"""run-due: what is due at successive instants, the catch-up policy, and one run per slot under concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbooks.archive.manifest import RunStatus
from runbooks.schedule.catalogue import Schedule
from runbooks.schedule.claims import LocalSlotClaims, SlotKey
from runbooks.schedule.due import pending_slots, run_due

DNS = Schedule("check-dns-posture", "sandbox", "*/30 * * * *", True)
VERIFY = Schedule("verify-backup-posture", "sandbox", "47 3 * * *", True, params={"max_age_hours": "30"})
OFF = Schedule("restore-drill", "sandbox", "30 5 * * 0", False)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Outcome:
    run_id: str
    status: RunStatus


class FakeRunner:
    def __init__(self, status: RunStatus = RunStatus.SUCCEEDED, delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status, self.delay = status, delay
        self._lock = threading.Lock()

    def __call__(self, **kw: Any) -> Outcome:
        time.sleep(self.delay)
        with self._lock:
            self.calls.append(kw)
            return Outcome(f"run-{len(self.calls)}", self.status)


def test_successive_instants_run_each_due_slot_once(tmp_path: Path) -> None:
    claims, runner = LocalSlotClaims(tmp_path), FakeRunner()

    def at(instant: str) -> list[tuple[str, str, str]]:
        acts = run_due([DNS, VERIFY, OFF], t(instant), claims, archive_root=tmp_path, runner=runner)
        return [(a.procedure, a.slot, a.action) for a in acts]

    # first call: each schedule starts with its latest slot (no history is "missed" before installation)
    assert at("2026-11-30T03:31") == [
        ("check-dns-posture", "20261130T0330Z", "run"),
        ("verify-backup-posture", "20261129T0347Z", "run"),
    ]
    assert at("2026-11-30T03:40") == []
    assert at("2026-11-30T03:47:10") == [("verify-backup-posture", "20261130T0347Z", "run")]
    assert at("2026-11-30T04:00") == [("check-dns-posture", "20261130T0400Z", "run")]
    assert at("2026-11-30T04:00:40") == []
    kw = runner.calls[1]
    assert kw["name_or_path"] == "verify-backup-posture" and kw["trigger"] == "schedule"
    assert kw["params"] == {"max_age_hours": "30"} and kw["environment"] == "sandbox"
    assert all(c["name_or_path"] != "restore-drill" for c in runner.calls)
    assert claims.result(SlotKey("sandbox", "check-dns-posture", t("2026-11-30T04:00"))) == {
        "run_id": "run-4",
        "status": "succeeded",
    }


def test_catch_up_runs_the_latest_missed_slot_once_and_records_the_others(tmp_path: Path) -> None:
    claims, runner = LocalSlotClaims(tmp_path), FakeRunner()
    announced: list[tuple[str, list[str]]] = []

    def on_missed(s: Schedule, slots: list[str]) -> list[dict[str, Any]]:
        announced.append((s.procedure, slots))
        return [{"channel": "slack", "delivered": True}]

    run_due([DNS], t("2026-11-30T03:30"), claims, archive_root=tmp_path, runner=runner)
    acts = run_due([DNS], t("2026-11-30T05:10"), claims, archive_root=tmp_path, runner=runner, on_missed=on_missed)
    assert [(a.slot, a.action) for a in acts] == [
        ("20261130T0400Z", "missed"),
        ("20261130T0430Z", "missed"),
        ("20261130T0500Z", "run"),
    ]
    assert announced == [("check-dns-posture", ["20261130T0400Z", "20261130T0430Z"])]
    missed = claims.get(SlotKey("sandbox", "check-dns-posture", t("2026-11-30T04:00")))
    assert missed is not None and missed["action"] == "missed"
    assert claims.result(SlotKey("sandbox", "check-dns-posture", t("2026-11-30T04:30")))["status"] == "missed"  # type: ignore[index]
    assert len(runner.calls) == 2


def test_pending_slots_policy() -> None:
    assert pending_slots(DNS, [], t("2026-11-30T03:31")) == [t("2026-11-30T03:30")]
    assert pending_slots(DNS, [t("2026-11-30T03:30")], t("2026-11-30T03:59")) == []
    # month end: last claimed on the 30th of November, called on the 1st of December after midnight
    assert pending_slots(DNS, [t("2026-11-30T23:00")], t("2026-12-01T00:05")) == [
        t("2026-11-30T23:30"),
        t("2026-12-01T00:00"),
    ]


def test_catch_up_records_at_most_a_week_of_missed_slots() -> None:
    pending = pending_slots(DNS, [t("2026-10-01T00:00")], t("2026-11-30T03:31"))
    assert pending[0] == t("2026-11-23T04:00") and pending[-1] == t("2026-11-30T03:30")
    assert len(pending) == 7 * 48
    yearly = Schedule("yearly", "sandbox", "0 0 1 1 *", True)
    assert pending_slots(yearly, [t("2025-01-01T00:00")], t("2026-11-30T03:31")) == [t("2026-01-01T00:00")]


def test_concurrent_run_due_calls_run_a_slot_once(tmp_path: Path) -> None:
    runner = FakeRunner(delay=0.2)

    def call(_: int) -> int:
        acts = run_due([DNS], t("2026-11-30T03:31"), LocalSlotClaims(tmp_path), archive_root=tmp_path, runner=runner)
        return len(acts)

    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(call, range(6)))
    assert sorted(counts) == [0, 0, 0, 0, 0, 1]
    assert len(runner.calls) == 1


def test_a_runner_error_is_recorded_on_the_claim(tmp_path: Path) -> None:
    def broken(**kw: Any) -> Any:
        raise PermissionError("the archive is not writable")

    claims = LocalSlotClaims(tmp_path)
    (act,) = run_due([DNS], t("2026-11-30T03:31"), claims, archive_root=tmp_path, runner=broken)
    assert act.status == "runner_error"
    result = claims.result(SlotKey("sandbox", "check-dns-posture", t("2026-11-30T03:30")))
    assert result is not None and "not writable" in result["error"]
