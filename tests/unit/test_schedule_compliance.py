"""Schedule compliance: each slot judged on time, late, failed, missed or pending from runs and claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbooks.archive.index import IndexedRun
from runbooks.schedule.catalogue import Schedule
from runbooks.schedule.claims import LocalSlotClaims, SlotKey
from runbooks.schedule.compliance import compliant, judge, summarize

DAILY = Schedule("verify-backup-posture", "production", "47 3 * * *", True)
TOL = timedelta(minutes=15)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(run_id: str, started: str, status: str = "succeeded", trigger: str = "schedule") -> IndexedRun:
    s = t(started)
    return IndexedRun(
        run_id=run_id,
        procedure=DAILY.procedure,
        environment="production",
        status=status,
        actor="render",
        trigger=trigger,
        started_at=s,
        ended_at=s + timedelta(seconds=30),
        duration_seconds=30,
        destructive=False,
        error_kind=None,
        path=f"x/{run_id}",
        manifest_sha256="0" * 64,
    )


def test_every_verdict(tmp_path: Path) -> None:
    runs = [
        run("r1", "2026-11-01T03:47:05"),  # on time
        run("r2", "2026-11-02T04:30:00"),  # late (43 min)
        run("r3", "2026-11-03T03:47:02", status="timed_out"),  # failed
        run("m4", "2026-11-04T03:50:00", trigger="manual"),  # a manual run does not count: missed
        run("r5", "2026-11-05T03:48:00", status="refused"),  # failed
    ]
    verdicts = judge(DAILY, t("2026-11-01T00:00"), t("2026-11-06T03:50"), runs, LocalSlotClaims(tmp_path), TOL)
    assert [(v.slot.day, v.verdict) for v in verdicts] == [
        (1, "on_time"),
        (2, "late"),
        (3, "failed"),
        (4, "missed"),
        (5, "failed"),
        (6, "pending"),
    ]
    assert verdicts[0].run_id == "r1" and verdicts[1].delay_seconds == 43 * 60 - 0
    assert summarize(verdicts)[DAILY.procedure] == {"on_time": 1, "late": 1, "failed": 2, "missed": 1, "pending": 1}
    assert not compliant(verdicts)
    assert compliant(verdicts[:2])


def test_month_end_period_counts_every_day(tmp_path: Path) -> None:
    runs = [run(f"r{d}", f"2026-02-{d:02d}T03:47:30") for d in range(1, 29)]
    verdicts = judge(DAILY, t("2026-02-01T00:00"), t("2026-03-01T00:00"), runs, LocalSlotClaims(tmp_path), TOL)
    assert len(verdicts) == 28 and {v.verdict for v in verdicts} == {"on_time"}


def test_claims_link_runs_and_record_missed_slots(tmp_path: Path) -> None:
    claims = LocalSlotClaims(tmp_path)
    day1, day2 = (
        SlotKey("production", DAILY.procedure, t("2026-11-01T03:47")),
        SlotKey("production", DAILY.procedure, t("2026-11-02T03:47")),
    )
    # run-due claimed day 1 at 03:48 (its "now"); the run record itself started at another (real) time
    claims.claim(day1, "run", at="2026-11-01T03:48:00+00:00")
    claims.record_result(day1, run_id="late-clock", status="succeeded")
    claims.claim(day2, "missed", at="2026-11-03T03:48:00+00:00")
    claims.record_result(day2, status="missed", alerts=[])  # as run-due writes it
    runs = [run("late-clock", "2026-11-20T10:00:00")]
    v1, v2 = judge(DAILY, t("2026-11-01T00:00"), t("2026-11-02T12:00"), runs, claims, TOL)
    assert (v1.verdict, v1.run_id, v1.delay_seconds) == ("on_time", "late-clock", 60.0)
    assert v2.verdict == "missed"


def test_a_runner_error_on_a_claimed_slot_is_a_failure(tmp_path: Path) -> None:
    claims = LocalSlotClaims(tmp_path)
    key = SlotKey("production", DAILY.procedure, t("2026-11-01T03:47"))
    claims.claim(key, "run", at="2026-11-01T03:48:00+00:00")
    claims.record_result(key, status="runner_error", error="PermissionError: the archive is not writable")
    (v,) = judge(DAILY, t("2026-11-01T00:00"), t("2026-11-01T12:00"), [], claims, TOL)
    assert (v.verdict, v.run_status) == ("failed", "runner_error")
