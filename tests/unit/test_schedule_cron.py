"""Cron over UTC: slots across month ends, leap days, year ends; the latest slot at an instant; refusals."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from runbooks.schedule import cron


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_slots_are_half_open_and_whole_minutes() -> None:
    slots = cron.slots_between("*/30 * * * *", t("2026-11-30T03:00"), t("2026-11-30T04:30"))
    assert slots == [t("2026-11-30T03:30"), t("2026-11-30T04:00"), t("2026-11-30T04:30")]


def test_day_31_only_in_months_that_have_it() -> None:
    slots = cron.slots_between("0 0 31 * *", t("2026-01-01T00:00"), t("2026-08-01T00:00"))
    assert [s.month for s in slots] == [1, 3, 5, 7]


def test_leap_day_and_year_end() -> None:
    assert cron.slots_between("0 12 29 2 *", t("2026-01-01T00:00"), t("2029-01-01T00:00")) == [t("2028-02-29T12:00")]
    assert cron.slots_between("59 23 31 12 *", t("2026-12-31T23:58"), t("2027-01-01T00:01")) == [t("2026-12-31T23:59")]


def test_utc_has_no_dst_gap_or_fold() -> None:
    # Europe/US DST switches (last Sunday of March / October, 2nd Sunday of March): UTC slots stay hourly
    for start in ("2026-03-29T00:00", "2026-10-25T00:00", "2026-03-08T00:00"):
        slots = cron.slots_between("30 * * * *", t(start), t(start) + timedelta(hours=6))
        assert len(slots) == 6
        assert all((b - a) == timedelta(hours=1) for a, b in itertools.pairwise(slots))


def test_latest_slot_at_and_between_slots() -> None:
    assert cron.latest_slot("47 3 * * *", t("2026-11-30T03:47")) == t("2026-11-30T03:47")
    assert cron.latest_slot("47 3 * * *", t("2026-11-30T03:47:59")) == t("2026-11-30T03:47")
    assert cron.latest_slot("47 3 * * *", t("2026-11-30T03:46:59")) == t("2026-11-29T03:47")
    # weekly, across a month end: Sunday 2026-11-29 05:30
    assert cron.latest_slot("30 5 * * 0", t("2026-12-02T00:00")) == t("2026-11-29T05:30")
    assert cron.next_slot("30 5 * * 0", t("2026-11-29T05:30")) == t("2026-12-06T05:30")


def test_next_runs_and_slot_ids_round_trip() -> None:
    runs = cron.next_runs("17 3 * * *", t("2026-02-27T12:00"), 3)
    assert runs == [t("2026-02-28T03:17"), t("2026-03-01T03:17"), t("2026-03-02T03:17")]
    assert cron.slot_id(runs[0]) == "20260228T0317Z"
    assert cron.parse_slot_id("20260228T0317Z") == runs[0]


def test_other_offsets_are_converted_to_utc() -> None:
    plus2 = datetime.fromisoformat("2026-11-30T05:47:00+02:00")
    assert cron.latest_slot("47 3 * * *", plus2) == t("2026-11-30T03:47")


@pytest.mark.parametrize("expr", ["every night", "* * * *", "61 * * * *", "0 0 * * * *"])
def test_malformed_expressions_are_refused(expr: str) -> None:
    with pytest.raises(cron.CronError, match="five fields"):
        cron.slots_between(expr, t("2026-01-01T00:00"), t("2026-01-02T00:00"))


def test_naive_instants_are_refused() -> None:
    with pytest.raises(cron.CronError, match="no time zone"):
        cron.latest_slot("* * * * *", datetime(2026, 11, 30, 3, 47))
