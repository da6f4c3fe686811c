"""restore-pitr: target parsing, refusals against the API's window, plan, polling (HTTP faked with httpx)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runbooks.procedures import pitr
from runbooks.providers.supabase import PitrWindow, SupabaseManagement

REF = "abcdefghijklmnopqrst"
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
WINDOW = PitrWindow(True, NOW - timedelta(days=7), NOW)


@pytest.fixture(autouse=True)
def _empty_archive(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(tmp_path / "runs"))


def client(handler: Callable[[httpx.Request], httpx.Response]) -> SupabaseManagement:
    sb = SupabaseManagement("https://api.example.test", "sbp_test", REF)
    sb._http = httpx.Client(base_url="https://api.example.test", transport=httpx.MockTransport(handler))
    return sb


def backups_body(
    enabled: bool = True, earliest: datetime | None = WINDOW.earliest, latest: datetime | None = NOW
) -> dict[str, Any]:
    data = {}
    if earliest is not None:
        data["earliest_physical_backup_date_unix"] = int(earliest.timestamp())
    if latest is not None:
        data["latest_physical_backup_date_unix"] = int(latest.timestamp())
    return {
        "region": "us-west-2",
        "walg_enabled": True,
        "pitr_enabled": enabled,
        "backups": [],
        "physical_backup_data": data,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:15:00Z", datetime(2026, 11, 27, 10, 15, tzinfo=UTC)),
        ("2026-11-27T11:15:00+01:00", datetime(2026, 11, 27, 10, 15, tzinfo=UTC)),
        (" 2026-11-27T10:15:00.250z ", datetime(2026, 11, 27, 10, 15, 0, 250000, tzinfo=UTC)),
    ],
)
def test_parse_target_accepts_zoned_iso(text: str, expected: datetime) -> None:
    assert pitr.parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("yesterday", "not an ISO 8601 timestamp"),
        ("2026-13-01T00:00:00Z", "not an ISO 8601 timestamp"),
        ("2026-11-27T10:15:00", "has no zone"),
    ],
)
def test_parse_target_refuses_malformed_or_zoneless(text: str, needle: str) -> None:
    with pytest.raises(pitr.PitrRefused, match=needle) as e:
        pitr.parse_target(text)
    assert e.value.parameter == "target_time"


def test_check_target_inside_window_passes() -> None:
    pitr.check_target(NOW - timedelta(hours=1), WINDOW, NOW, REF)
    pitr.check_target(NOW, WINDOW, NOW, REF)


@pytest.mark.parametrize(
    ("target", "window", "param", "needle"),
    [
        (NOW - timedelta(hours=1), PitrWindow(False, None, None), "environment", "disabled"),
        (NOW + timedelta(seconds=5), WINDOW, "target_time", "in the future"),
        (NOW - timedelta(days=8), WINDOW, "target_time", "before the PITR window"),
        (NOW - timedelta(hours=1), PitrWindow(True, None, None), "target_time", "no physical backup"),
        (
            NOW - timedelta(minutes=1),
            PitrWindow(True, NOW - timedelta(days=1), NOW - timedelta(hours=1)),
            "target_time",
            "after the latest restorable time",
        ),
    ],
)
def test_check_target_refusals(target: datetime, window: PitrWindow, param: str, needle: str) -> None:
    with pytest.raises(pitr.PitrRefused, match=needle) as e:
        pitr.check_target(target, window, NOW, REF)
    assert e.value.parameter == param


def test_make_plan_shows_the_exact_call_and_sends_nothing_else() -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(f"{req.method} {req.url.path}")
        return httpx.Response(200, json=backups_body())

    plan = pitr.make_plan(
        client(handler), environment="sandbox", target_time="2026-11-27T11:30:00.900Z", reason="bad migration", now=NOW
    )
    assert seen == [f"GET /v1/projects/{REF}/database/backups"]  # a plan changes nothing
    assert plan.target_unix == int(datetime(2026, 11, 27, 11, 30, tzinfo=UTC).timestamp())  # rounded down
    assert plan.api_call == (
        f"POST /v1/projects/{REF}/database/backups/restore-pitr {{'recovery_time_target_unix': {plan.target_unix}}}"
    )
    assert any(line.startswith("db:") for line in plan.unavailable)
    assert len(plan.restore_point) <= 20 and plan.reason == "bad migration"
    assert plan.last_restore_seconds is None  # no earlier restore in this archive


def test_make_plan_with_empty_target_means_now() -> None:
    plan = pitr.make_plan(
        client(lambda r: httpx.Response(200, json=backups_body())),
        environment="sandbox",
        target_time="",
        reason="x",
        now=NOW,
    )
    assert plan.target_unix is None and plan.target == "now (at apply)"
    assert pitr.target_now(NOW + timedelta(milliseconds=999)) == int(NOW.timestamp())


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"target_time": "2026-11-27T11:30:00Z", "reason": "  "}, "reason"),
        ({"target_time": "2026-11-27 25:00", "reason": "x"}, "target_time"),
        ({"target_time": "2099-01-01T00:00:00Z", "reason": "x"}, "target_time"),
        ({"target_time": "2026-11-01T00:00:00Z", "reason": "x"}, "target_time"),
    ],
)
def test_make_plan_refuses_bad_inputs(kwargs: dict[str, str], param: str) -> None:
    with pytest.raises(pitr.PitrRefused) as e:
        pitr.make_plan(
            client(lambda r: httpx.Response(200, json=backups_body())), environment="sandbox", now=NOW, **kwargs
        )
    assert e.value.parameter == param and str(e.value).startswith(f"{param}: ")


def test_make_plan_refuses_when_pitr_is_disabled() -> None:
    with pytest.raises(pitr.PitrRefused, match="disabled") as e:
        pitr.make_plan(
            client(lambda r: httpx.Response(200, json=backups_body(enabled=False))),
            environment="production",
            target_time="2026-11-27T11:30:00Z",
            reason="x",
            now=NOW,
        )
    assert e.value.parameter == "environment"


class FakeProject:
    """Answers the Management API like a project going through a restore."""

    def __init__(self, statuses: list[str], health: str = "ACTIVE_HEALTHY"):
        self.statuses, self.health, self.calls = statuses, health, []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.calls.append(f"{req.method} {req.url.path}")
        path = req.url.path
        if path.endswith("/restore-point"):
            return httpx.Response(
                201,
                json={"name": json.loads(req.content)["name"], "status": "AVAILABLE", "completed_on": NOW.isoformat()},
            )
        if path.endswith("/restore-pitr"):
            assert json.loads(req.content) == {"recovery_time_target_unix": 1795000000}
            return httpx.Response(201)
        if path.endswith("/health"):
            names = req.url.params.get_list("services")
            return httpx.Response(
                200,
                json=[{"name": n, "healthy": self.health == "ACTIVE_HEALTHY", "status": self.health} for n in names],
            )
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(200, json={"ref": REF, "status": status})


def _plan() -> pitr.PitrPlan:
    return pitr.PitrPlan("sandbox", REF, "x", "t", 1795000000, "call", {}, [], None, "pre-pitr-1")


def test_apply_creates_a_restore_point_first_and_waits_until_healthy() -> None:
    fake = FakeProject(["RESTORING", "RESTORING", "ACTIVE_HEALTHY"])
    tl = pitr.apply_plan(client(fake), _plan(), target_unix=1795000000, deadline_s=10, poll_s=0.01)
    assert fake.calls[0].endswith("/restore-point") and fake.calls[1].endswith("/restore-pitr")
    events = [e["event"] for e in tl.events]
    assert events[:2] == ["restore point created", "restore requested"]
    assert [e.get("status") for e in tl.events if e["event"] == "project status"] == ["RESTORING", "ACTIVE_HEALTHY"]
    assert events[-1] == "services healthy"
    assert tl.seconds_between("restore requested", "services healthy") is not None


def test_apply_fails_fast_on_restore_failed() -> None:
    with pytest.raises(pitr.PitrFailed, match="RESTORE_FAILED"):
        pitr.apply_plan(
            client(FakeProject(["RESTORING", "RESTORE_FAILED"])),
            _plan(),
            target_unix=1795000000,
            deadline_s=10,
            poll_s=0.01,
        )


def test_apply_gives_up_at_the_deadline_when_services_stay_unhealthy() -> None:
    with pytest.raises(pitr.PitrFailed, match="not healthy within"):
        pitr.apply_plan(
            client(FakeProject(["ACTIVE_HEALTHY"], health="UNHEALTHY")),
            _plan(),
            target_unix=1795000000,
            deadline_s=0.2,
            poll_s=0.05,
        )


def test_expected_markers_split_at_the_target_with_slack() -> None:
    t = NOW
    snap = {"old": t - timedelta(minutes=5), "edge": t - timedelta(milliseconds=50), "new": t + timedelta(seconds=1)}
    assert pitr.expected_markers(snap, t) == (["old"], ["new"])
