"""restore-pitr: target parsing, refusals against the API's window, plan, apply-time re-check, polling, marker
verdicts (HTTP faked with httpx, Postgres faked where markers are read)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from runbooks.errors import BadParameter, Refused
from runbooks.plan import authorise
from runbooks.procedures import pitr
from runbooks.providers.supabase import PitrWindow, SupabaseManagement

REF = "abcdefghijklmnopqrst"
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
WINDOW = PitrWindow(True, NOW - timedelta(days=7), NOW)
TARGET = datetime.fromtimestamp(1795000000, UTC)  #: the target the fake project expects (in the past)


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
    with pytest.raises(BadParameter, match=needle) as e:
        pitr.parse_target(text)
    assert e.value.name == "target_time" and isinstance(e.value, Refused)
    assert str(e.value).startswith("target_time (value not shown): ") and e.value.fix
    assert text not in str(e.value)  # a refused value may be a pasted secret: never repeated


def test_check_target_inside_window_passes() -> None:
    pitr.check_target(NOW - timedelta(hours=1), WINDOW, NOW, REF)
    pitr.check_target(NOW, WINDOW, NOW, REF)


@pytest.mark.parametrize(
    ("target", "window", "param", "needle"),
    [
        (NOW - timedelta(hours=1), PitrWindow(False, None, None), "environment", "disabled.*enable the PITR add-on"),
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
    with pytest.raises(BadParameter, match=needle) as e:
        pitr.check_target(target, window, NOW, REF)
    assert e.value.name == param and e.value.fix


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


def test_make_plan_with_empty_target_means_now_in_the_sandbox() -> None:
    plan = pitr.make_plan(
        client(lambda r: httpx.Response(200, json=backups_body())),
        environment="sandbox",
        target_time="",
        reason="x",
        now=NOW,
    )
    assert plan.target_unix is None and plan.target == "now (at apply)"
    assert pitr.target_now(NOW + timedelta(milliseconds=999)) == int(NOW.timestamp())


@pytest.mark.parametrize("environment", ["production", "staging"])
@pytest.mark.parametrize("target_time", ["", "   "])
def test_make_plan_requires_an_explicit_target_outside_the_sandbox(environment: str, target_time: str) -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(f"{req.method} {req.url.path}")
        return httpx.Response(200, json=backups_body())

    with pytest.raises(BadParameter, match=f"required in {environment}") as e:
        pitr.make_plan(client(handler), environment=environment, target_time=target_time, reason="x", now=NOW)
    assert e.value.name == "target_time" and "-p target_time=" in e.value.fix
    assert seen == []  # refused before even asking the API


@pytest.mark.parametrize(
    ("kwargs", "param", "needle"),
    [
        ({"target_time": "2026-11-27T11:30:00Z", "reason": "  "}, "reason", "say why"),
        ({"target_time": "2026-11-27 25:00", "reason": "x"}, "target_time", "not an ISO 8601 timestamp"),
        ({"target_time": "2026-11-27T11:30:00", "reason": "x"}, "target_time", "has no zone"),
        ({"target_time": "2099-01-01T00:00:00Z", "reason": "x"}, "target_time", "in the future"),
        ({"target_time": "2026-11-01T00:00:00Z", "reason": "x"}, "target_time", "before the PITR window"),
    ],
)
@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_make_plan_refuses_bad_inputs(kwargs: dict[str, str], param: str, needle: str, environment: str) -> None:
    with pytest.raises(BadParameter, match=needle) as e:
        pitr.make_plan(
            client(lambda r: httpx.Response(200, json=backups_body())), environment=environment, now=NOW, **kwargs
        )
    shown = f"{param}={kwargs[param]!r}: "  # only a blank value is repeated (a refused value may be a secret)
    hidden = f"{param} (value not shown): "
    assert e.value.name == param and str(e.value).startswith(shown if not kwargs[param].strip() else hidden)


def test_make_plan_refuses_when_pitr_is_disabled() -> None:
    with pytest.raises(BadParameter, match="disabled") as e:
        pitr.make_plan(
            client(lambda r: httpx.Response(200, json=backups_body(enabled=False))),
            environment="production",
            target_time="2026-11-27T11:30:00Z",
            reason="x",
            now=NOW,
        )
    assert e.value.name == "environment" and e.value.value == "production"


class FakeProject:
    """Answers the Management API like a project going through a restore."""

    def __init__(self, statuses: list[str], health: str = "ACTIVE_HEALTHY", backups: dict[str, Any] | None = None):
        self.statuses, self.health, self.calls = statuses, health, []
        self.backups = backups or backups_body(earliest=TARGET - timedelta(days=1), latest=TARGET + timedelta(hours=1))

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.calls.append(f"{req.method} {req.url.path}")
        path = req.url.path
        if path.endswith("/database/backups"):
            return httpx.Response(200, json=self.backups)
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


def _plan(environment: str = "sandbox", target_unix: int | None = 1795000000) -> pitr.PitrPlan:
    return pitr.PitrPlan(environment, REF, "x", "t", target_unix, "call", {}, [], None, "pre-pitr-1")


def test_apply_rechecks_the_window_then_creates_a_restore_point_and_waits_until_healthy() -> None:
    fake = FakeProject(["RESTORING", "RESTORING", "ACTIVE_HEALTHY"])
    tl = pitr.apply_plan(
        client(fake), _plan(), authorise("sandbox"), target_unix=1795000000, deadline_s=10, poll_s=0.01
    )
    assert fake.calls[0].endswith("/database/backups")  # the window, read again right before the change
    assert fake.calls[1].endswith("/restore-point") and fake.calls[2].endswith("/restore-pitr")
    events = [e["event"] for e in tl.events]
    assert events[:3] == ["window re-checked", "restore point created", "restore requested"]
    assert [e.get("status") for e in tl.events if e["event"] == "project status"] == ["RESTORING", "ACTIVE_HEALTHY"]
    assert events[-1] == "services healthy"
    assert tl.seconds_between("restore requested", "services healthy") is not None


def test_apply_fails_fast_on_restore_failed() -> None:
    with pytest.raises(pitr.PitrFailed, match="RESTORE_FAILED"):
        pitr.apply_plan(
            client(FakeProject(["RESTORING", "RESTORE_FAILED"])),
            _plan(),
            authorise("sandbox"),
            target_unix=1795000000,
            deadline_s=10,
            poll_s=0.01,
        )


def test_apply_gives_up_at_the_deadline_when_services_stay_unhealthy() -> None:
    with pytest.raises(pitr.PitrFailed, match="not healthy within"):
        pitr.apply_plan(
            client(FakeProject(["ACTIVE_HEALTHY"], health="UNHEALTHY")),
            _plan(),
            authorise("sandbox"),
            target_unix=1795000000,
            deadline_s=0.2,
            poll_s=0.05,
        )


def test_expected_markers_split_at_the_target_with_slack() -> None:
    t = NOW
    snap = {"old": t - timedelta(minutes=5), "edge": t - timedelta(milliseconds=50), "new": t + timedelta(seconds=1)}
    assert pitr.expected_markers(snap, t) == (["old"], ["new"])


@pytest.mark.parametrize(
    ("backups", "param", "needle"),
    [
        (backups_body(enabled=False), "environment", "disabled"),
        (
            backups_body(earliest=TARGET + timedelta(seconds=1), latest=TARGET + timedelta(hours=1)),
            "target_time",
            "before",
        ),
        (
            backups_body(earliest=TARGET - timedelta(days=1), latest=TARGET - timedelta(seconds=1)),
            "target_time",
            "after",
        ),
    ],
)
def test_apply_refuses_when_the_window_changed_since_the_plan_and_changes_nothing(
    backups: dict[str, Any], param: str, needle: str
) -> None:
    fake = FakeProject(["ACTIVE_HEALTHY"], backups=backups)
    with pytest.raises(BadParameter, match=needle) as e:
        pitr.apply_plan(
            client(fake),
            _plan("production"),
            authorise("production"),
            target_unix=1795000000,
            deadline_s=10,
            poll_s=0.01,
        )
    assert e.value.name == param
    assert fake.calls == [f"GET /v1/projects/{REF}/database/backups"]  # no restore point, no restore


class FakePg:
    """Stands in for Postgres where prepare_apply and verify_markers read markers (and the twin writes them)."""

    def __init__(self, marks: dict[str, datetime] | None):
        self.marks = marks
        self.bracketed: list[str] = []


@pytest.fixture
def fake_markers(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, datetime] | None], FakePg]:
    def make(marks: dict[str, datetime] | None) -> FakePg:
        pg = FakePg(marks)

        def bracket(_pg: Any, tag: str) -> tuple[int, list[str], list[str]]:
            pg.bracketed.append(tag)
            return int(NOW.timestamp()), [f"{tag}-before"], [f"{tag}-after"]

        # patched where prepare_apply and verify_markers look them up (the module that owns the markers)
        monkeypatch.setattr(pitr.verify, "markers", lambda _pg: _pg.marks)
        monkeypatch.setattr(pitr.verify, "bracket_target", bracket)
        return pg

    return make


def test_prepare_apply_uses_the_planned_target_and_splits_existing_markers(fake_markers: Any) -> None:
    target = NOW - timedelta(hours=1)
    pg = fake_markers({"old": target - timedelta(minutes=5), "new": target + timedelta(minutes=5)})
    prepared = pitr.prepare_apply(_plan("production", int(target.timestamp())), pg)
    assert prepared.target == target and not prepared.bracketed and pg.bracketed == []
    assert (prepared.present, prepared.absent) == (["old"], ["new"])


def test_prepare_apply_brackets_now_only_in_the_sandbox(fake_markers: Any) -> None:
    pg = fake_markers({"seed": NOW - timedelta(days=1)})
    prepared = pitr.prepare_apply(_plan("sandbox", None), pg, tag="t1")
    assert prepared.bracketed and pg.bracketed == ["t1"] and prepared.target_unix == int(NOW.timestamp())
    assert prepared.present == ["seed", "t1-before"] and prepared.absent == ["t1-after"]


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_prepare_apply_never_falls_back_to_now_outside_the_sandbox(fake_markers: Any, environment: str) -> None:
    pg = fake_markers(None)
    with pytest.raises(BadParameter, match="target_time=''") as e:
        pitr.prepare_apply(_plan(environment, None), pg)
    assert e.value.name == "target_time" and pg.bracketed == []


def _prepared(present: list[str], absent: list[str]) -> pitr.ApplyTarget:
    return pitr.ApplyTarget(int(NOW.timestamp()), present, absent, False)


def test_verify_markers_passes_and_fails_on_what_the_restore_contains(fake_markers: Any) -> None:
    pg = fake_markers({"old": NOW - timedelta(hours=2)})
    good = pitr.verify_markers(pg, ["old"], ["new"])
    assert good["ok"] and good["status"] == "PASS"
    assert pitr.conclude(good, _prepared(["old"], ["new"])).startswith("restored to ")
    pg.marks = {"new": NOW}
    bad = pitr.verify_markers(pg, ["old"], ["new"])
    assert not bad["ok"] and bad["status"] == "FAIL"
    assert bad["missing"] == ["old"] and bad["unexpectedly_present"] == ["new"]
    with pytest.raises(pitr.PitrFailed, match="not as at"):
        pitr.conclude(bad, _prepared(["old"], ["new"]))


@pytest.mark.parametrize(
    ("marks", "present", "why"),
    [
        (None, ["old"], "no restore_markers table"),  # outside the twin: nothing to read
        ({}, [], "no marker was committed"),  # a table, but nothing on either side of the target
    ],
)
def test_verify_markers_is_not_verifiable_without_markers_never_ok(
    fake_markers: Any, marks: dict[str, datetime] | None, present: list[str], why: str
) -> None:
    verdict = pitr.verify_markers(fake_markers(marks), present, [])
    assert verdict["status"] == "WARN" and verdict["ok"] is False
    assert verdict["detail"].startswith("not verifiable here") and why in verdict["detail"]
    line = pitr.conclude(verdict, _prepared(present, []))
    assert line.startswith("WARNING:") and "not verifiable here" in line


def test_timeline_record_has_target_events_and_restore_seconds() -> None:
    tl = pitr.Timeline()
    tl.add("restore requested")
    tl.add("services healthy")
    rec = pitr.timeline_record(_prepared([], []), tl)
    assert rec["target"] == NOW.isoformat() and len(rec["events"]) == 2 and rec["restore_seconds"] is not None


@pytest.mark.parametrize(
    ("environment", "target_time", "expected"),
    [
        ("sandbox", "", None),
        ("production", "2026-11-27T11:30:00+01:00", datetime(2026, 11, 27, 10, 30, tzinfo=UTC)),
    ],
)
def test_validate_request_needs_no_api(environment: str, target_time: str, expected: datetime | None) -> None:
    assert pitr.validate_request(environment=environment, target_time=target_time, reason="x") == expected
