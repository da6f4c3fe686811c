"""Cron expressions over UTC: the slots of a schedule in a period, its next runs, the latest slot at an instant.

A *slot* is an instant a schedule fires at (whole minutes, UTC; there is no daylight-saving time in UTC, so
every slot exists exactly once). Instants given without a zone are refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from croniter import croniter

MINUTE = timedelta(minutes=1)


class CronError(ValueError):
    """A malformed cron expression, or an instant without a time zone."""


def validate(expr: str) -> str:
    if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise CronError(f"{expr!r} is not a cron expression of five fields (minute hour day month weekday, UTC)")
    return expr


def utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise CronError(f"{ts.isoformat()} has no time zone; give UTC instants (e.g. 2026-11-30T03:47:00Z)")
    return ts.astimezone(UTC)


def _floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def iter_slots(expr: str, after: datetime) -> Iterator[datetime]:
    """The slots strictly after ``after``, in order (endless)."""
    it = croniter(validate(expr), utc(after))
    while True:
        yield it.get_next(datetime).astimezone(UTC)


def slots_between(expr: str, start: datetime, end: datetime) -> list[datetime]:
    """The slots in the half-open period ``(start, end]``."""
    start, end = utc(start), utc(end)
    out: list[datetime] = []
    for slot in iter_slots(expr, start):
        if slot > end:
            break
        out.append(slot)
    return out


def next_runs(expr: str, after: datetime, count: int = 3) -> list[datetime]:
    it = iter_slots(expr, after)
    return [next(it) for _ in range(count)]


def latest_slot(expr: str, at: datetime) -> datetime:
    """The last slot at or before ``at``."""
    prev: datetime = croniter(validate(expr), _floor_minute(utc(at)) + MINUTE).get_prev(datetime)
    return prev.astimezone(UTC)


def next_slot(expr: str, slot: datetime) -> datetime:
    """The slot that follows ``slot``."""
    return next(iter_slots(expr, utc(slot)))


def slot_id(slot: datetime) -> str:
    """A slot's stable name, sortable: ``20261130T0347Z``."""
    return utc(slot).strftime("%Y%m%dT%H%MZ")


def parse_slot_id(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
