"""The twin's alert receivers without HTTP (``Inbox``): what each format accepts or refuses, scripted failures,
and PagerDuty incidents opened and resolved by dedup_key."""

from __future__ import annotations

from pathlib import Path

from runbooks.sandbox.emulators.alerts.inbox import Inbox

KEY = "0123456789abcdef0123456789abcdef"
TRIGGER = {
    "routing_key": KEY,
    "event_action": "trigger",
    "dedup_key": "runbooks/sandbox/x",
    "payload": {"summary": "s", "source": "runbooks/sandbox", "severity": "error"},
}


def test_slack_accepts_text_and_refuses_the_rest(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    assert inbox.slack({"text": "hello"}, token_ok=True).status == 200
    assert inbox.slack({"text": "hello"}, token_ok=False).body == "no_service"
    assert inbox.slack({"blocks": []}, token_ok=True).body == "no_text"
    assert [r["status"] for r in inbox.requests()] == [200, 404, 400]


def test_pagerduty_validates_events_and_tracks_incidents(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    assert inbox.pagerduty(TRIGGER, KEY).status == 202
    assert inbox.incidents["runbooks/sandbox/x"]["events"] == 1
    bad = inbox.pagerduty({**TRIGGER, "routing_key": "other"}, KEY)
    assert bad.status == 400 and "'routing_key' is invalid" in bad.body["errors"]
    no_severity = {**TRIGGER, "payload": {"summary": "s", "source": "x", "severity": "bad"}}
    assert "'payload.severity' must be one of" in inbox.pagerduty(no_severity, KEY).body["errors"][0]
    resolve = {"routing_key": KEY, "event_action": "resolve", "dedup_key": "runbooks/sandbox/x"}
    assert inbox.pagerduty(resolve, KEY).body["dedup_key"] == "runbooks/sandbox/x"
    assert inbox.incidents == {}


def test_scripted_and_permanent_failures(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    inbox.fail_next(2, 502)
    assert [inbox.slack({"text": "x"}, True).status for _ in range(3)] == [502, 502, 200]
    down = Inbox(tmp_path / "down", always_fail=True)
    (tmp_path / "down").mkdir()
    assert down.pagerduty(TRIGGER, KEY).status == 503 and down.incidents == {}
    inbox.clear()
    assert inbox.requests() == []
