"""Alerts: content (failing checks with remediation, run id, how to open), both wire formats, retries with
backoff, undeliverable alerts reported, incidents opened and resolved; no secret in any request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from runbooks.inventory.models import AlertChannels
from runbooks.schedule.alerts import formats, incidents, message
from runbooks.schedule.alerts.delivery import send
from runbooks.schedule.alerts.notify import after_missed, after_run

WEBHOOK = "https://hooks.example.test/services/T000/B000/sekr3tw3bhookpath"
ROUTING = "R0UTINGKEYsecret0123456789abcdef"
CHECKS = [
    {"check": "dns.proxied", "subject": "app", "status": "PASS", "evidence": "proxied", "remediation": ""},
    {
        "check": "backup.fresh",
        "subject": "spectral-backups",
        "status": "FAIL",
        "evidence": "latest backup is 72h old",
        "remediation": "run nightly-backup now",
    },
]


class Receiver:
    """An httpx transport that records requests and answers with a scripted sequence of status codes."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((str(request.url), json.loads(request.content)))
        code = self.codes.pop(0) if self.codes else 202
        return httpx.Response(code, json={"status": "ok"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def channels() -> AlertChannels:
    return AlertChannels(
        slack_webhook="env:SLACK_URL",
        pagerduty_routing_key="env:PD_KEY",
        pagerduty_events_url="https://events.example.test/v2/enqueue",
        attempts=3,
        backoff_seconds=0,
    )


def test_message_names_procedure_status_checks_run_and_how_to_open() -> None:
    alert = message.for_run(
        "verify-backup-posture", "production", "failed", "RUN1", "ChecksFailed: 1", {"checks": CHECKS}, str
    )
    text = "\n".join(alert.lines())
    assert "[production] scheduled verify-backup-posture: failed" in text
    assert "backup.fresh spectral-backups: latest backup is 72h old -> run nightly-backup now" in text
    assert "dns.proxied" not in text  # only failing checks
    assert "runbooks runs show RUN1" in text and alert.dedup_key == "runbooks/production/verify-backup-posture"


def test_message_text_goes_through_the_scrubber() -> None:
    rows = [{"check": "c", "subject": "s", "status": "FAIL", "evidence": f"saw {ROUTING}", "remediation": "x"}]
    alert = message.for_run(
        "p",
        "production",
        "failed",
        "R",
        f"boom {ROUTING}",
        {"checks": rows},
        lambda s: s.replace(ROUTING, "[REDACTED]"),
    )
    assert ROUTING not in json.dumps(formats.slack(alert)) and "[REDACTED]" in alert.detail


def test_wire_formats() -> None:
    alert = message.for_run("nightly-backup", "production", "timed_out", "RUN2", "", {}, str)
    slack = formats.slack(alert)
    assert slack["text"].startswith("[production] scheduled nightly-backup: timed_out") and slack["blocks"]
    pd = formats.pagerduty(alert, "KEY")
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == "runbooks/production/nightly-backup"
    assert pd["payload"]["severity"] == "error" and pd["payload"]["custom_details"]["run_id"] == "RUN2"
    assert set(pd["payload"]) >= {"summary", "source", "severity"}  # required by Events API v2
    resolve = formats.pagerduty(message.resolution("nightly-backup", "production", "RUN3"), "KEY")
    assert resolve == {
        "routing_key": "KEY",
        "event_action": "resolve",
        "dedup_key": "runbooks/production/nightly-backup",
    }


def test_send_retries_transient_failures_then_delivers() -> None:
    rx = Receiver(503, 429, 202)
    assert send("https://x.test/", {"a": 1}, attempts=4, backoff=0, client=rx.client()) == (True, 3, "")


def test_send_gives_up_and_says_why_without_the_url() -> None:
    rx = Receiver(500, 500, 500)
    ok, made, reason = send(WEBHOOK, {}, attempts=3, backoff=0, client=rx.client())
    assert (ok, made) == (False, 3) and "HTTP 500" in reason and WEBHOOK not in reason
    ok, made, reason = send(WEBHOOK, {}, attempts=3, backoff=0, client=Receiver(400).client())
    assert (ok, made) == (False, 1) and "refused" in reason


def test_send_survives_network_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    ok, made, reason = send(
        WEBHOOK, {}, attempts=2, backoff=0, client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    assert (ok, made) == (False, 2) and "ConnectError" in reason and WEBHOOK not in reason


def test_failure_triggers_then_success_resolves_once(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SLACK_URL", WEBHOOK)
    monkeypatch.setenv("PD_KEY", ROUTING)
    rx = Receiver()
    common = {
        "procedure": "verify-backup-posture",
        "environment": "production",
        "archive_root": tmp_path,
        "scrub": str,
        "channels": channels(),
        "client": rx.client(),
        "error": "",
        "results": {"checks": CHECKS},
    }
    sent = after_run(status="failed", run_id="R1", **common)
    assert [(d.channel, d.action, d.delivered) for d in sent] == [
        ("slack", "trigger", True),
        ("pagerduty", "trigger", True),
    ]
    assert incidents.get(tmp_path, "production", "verify-backup-posture") is not None
    (slack_url, slack_body), (pd_url, pd_body) = rx.requests
    assert slack_url == WEBHOOK and "run nightly-backup now" in slack_body["text"]
    assert pd_url == "https://events.example.test/v2/enqueue" and pd_body["routing_key"] == ROUTING
    assert ROUTING not in json.dumps(slack_body) and WEBHOOK not in json.dumps(pd_body)
    sent = after_run(status="succeeded", run_id="R2", **common)
    assert [(d.channel, d.action) for d in sent] == [("slack", "resolve"), ("pagerduty", "resolve")]
    assert rx.requests[-1][1]["event_action"] == "resolve"
    assert incidents.get(tmp_path, "production", "verify-backup-posture") is None
    assert after_run(status="succeeded", run_id="R3", **common) == []  # nothing open: nothing sent
    assert after_run(status="refused", run_id="R4", **common) == []
    assert len(rx.requests) == 4


def test_an_undeliverable_alert_is_reported_and_the_incident_stays_open(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SLACK_URL", WEBHOOK)  # PD_KEY unset: that channel cannot be resolved
    rx = Receiver(503, 503, 503)
    sent = after_missed(
        procedure="nightly-backup",
        environment="production",
        slots=["20261130T0317Z"],
        archive_root=tmp_path,
        channels=channels(),
        client=rx.client(),
    )
    assert [(d.channel, d.delivered, d.attempts) for d in sent] == [("slack", False, 3), ("pagerduty", False, 0)]
    assert "PD_KEY" in sent[1].error and "HTTP 503" in sent[0].error
    assert incidents.get(tmp_path, "production", "nightly-backup")["status"] == "missed"  # type: ignore[index]
