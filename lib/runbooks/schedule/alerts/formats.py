"""The two wire formats: a Slack-compatible incoming webhook body and a PagerDuty Events API v2 event."""

from __future__ import annotations

from typing import Any

from runbooks.schedule.alerts.message import Alert

SEVERITY = {"missed": "warning", "resolved": "info"}


def slack(alert: Alert) -> dict[str, Any]:
    """``{"text", "blocks"}``: ``text`` is the fallback every Slack-compatible receiver shows."""
    lines = alert.lines()
    body = "\n".join(lines[1:])
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": lines[0][:150]}}]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    return {"text": "\n".join(lines), "blocks": blocks}


def pagerduty(alert: Alert, routing_key: str) -> dict[str, Any]:
    """A ``trigger`` event, or a ``resolve`` event for :func:`~runbooks.schedule.alerts.message.resolution`."""
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_key}
    details: dict[str, Any] = {"status": alert.status, "open_with": alert.open_with}
    if alert.run_id:
        details["run_id"] = alert.run_id
    if alert.detail:
        details["detail"] = alert.detail
    if alert.checks:
        details["failing_checks"] = [
            {"check": c.check, "subject": c.subject, "evidence": c.evidence, "remediation": c.remediation}
            for c in alert.checks
        ]
    if alert.missed_slots:
        details["missed_slots"] = list(alert.missed_slots)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.summary[:1024],
            "source": f"runbooks/{alert.environment}",
            "severity": SEVERITY.get(alert.status, "error"),
            "component": alert.procedure,
            "group": alert.environment,
            "class": alert.status,
            "custom_details": details,
        },
    }
