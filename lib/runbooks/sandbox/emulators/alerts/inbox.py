"""What the receivers do, without HTTP: validate a Slack incoming-webhook body or a PagerDuty Events API v2
event, record it (``<root>/alerts/requests.jsonl``), and fail on command (the next N requests answer an error,
to exercise the sender's retries). Open PagerDuty incidents are tracked by ``dedup_key`` like PagerDuty does:
a ``trigger`` opens (or adds to) one, a ``resolve`` closes it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class Inbox:
    def __init__(self, state_dir: Path, *, always_fail: bool = False) -> None:
        self.log = state_dir / "requests.jsonl"
        self.always_fail = always_fail
        self._lock = threading.Lock()
        self._fail_next: list[int] = []
        self.incidents: dict[str, dict[str, Any]] = {}

    # -- controls ---------------------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_next = [status] * count

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def clear(self) -> None:
        with self._lock:
            self.log.unlink(missing_ok=True)
            self.incidents.clear()

    # -- receiving --------------------------------------------------------------------------------------
    def _record(self, fmt: str, body: Any, answer: Answer) -> Answer:
        entry = {"format": fmt, "at": datetime.now(UTC).isoformat(), "status": answer.status, "body": body}
        with self._lock, self.log.open("a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
        return answer

    def _scripted_failure(self) -> int | None:
        with self._lock:
            if self.always_fail:
                return 503
            return self._fail_next.pop(0) if self._fail_next else None

    def slack(self, body: Any, token_ok: bool) -> Answer:
        if (code := self._scripted_failure()) is not None:
            return self._record("slack", body, Answer(code, "service_unavailable"))
        if not token_ok:
            return self._record("slack", body, Answer(404, "no_service"))
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return self._record("slack", body, Answer(400, "no_text"))
        return self._record("slack", body, Answer(200, "ok"))

    def pagerduty(self, body: Any, expected_key: str) -> Answer:
        if (code := self._scripted_failure()) is not None:
            return self._record("pagerduty", body, Answer(code, {"status": "unavailable"}))
        errors = self._pd_errors(body, expected_key)
        if errors:
            invalid = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            return self._record("pagerduty", body, Answer(400, invalid))
        key = body["dedup_key"]
        if body["event_action"] == "trigger":
            self.incidents.setdefault(key, {"opened": datetime.now(UTC).isoformat(), "events": 0})["events"] += 1
        elif body["event_action"] == "resolve":
            self.incidents.pop(key, None)
        ok = {"status": "success", "message": "Event processed", "dedup_key": key}
        return self._record("pagerduty", body, Answer(202, ok))

    @staticmethod
    def _pd_errors(body: Any, expected_key: str) -> list[str]:
        if not isinstance(body, dict):
            return ["Event must be a JSON object"]
        errors = []
        if body.get("routing_key") != expected_key:
            errors.append("'routing_key' is invalid")
        action = body.get("event_action")
        if action not in PD_ACTIONS:
            errors.append(f"'event_action' must be one of {', '.join(PD_ACTIONS)}")
        if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing")
            else:
                errors += [f"'payload.{f}' is missing" for f in ("summary", "source") if not payload.get(f)]
                if payload.get("severity") not in PD_SEVERITIES:
                    errors.append(f"'payload.severity' must be one of {', '.join(PD_SEVERITIES)}")
            if not body.get("dedup_key"):
                errors.append("this twin expects a dedup_key on every trigger (runbooks always sends one)")
        return errors
