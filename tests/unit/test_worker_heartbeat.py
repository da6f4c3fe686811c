"""A URL-less worker's health: the log line it writes, the twin's logs API that serves it, and the Render
provider reading it back (fresh, stale, malformed, missing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runbooks.providers.render import RenderProvider, RenderService
from runbooks.sandbox.emulators.render import logs
from runbooks.sandbox.services.app import HEARTBEAT_MARKER, ServiceConfig, heartbeat_line

WORKER = RenderService("srv-w", "worker", "background_worker", None, "/healthz")


def _stamp(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_the_worker_writes_its_report_as_one_marked_json_line() -> None:
    cfg = ServiceConfig("worker", "127.0.0.1", 0, "2026.11.3", None, keys={"OAUTH_CLIENT_SECRET": "s" * 24})
    line = heartbeat_line(cfg)
    assert line.startswith(HEARTBEAT_MARKER) and "\n" not in line
    body = json.loads(line[len(HEARTBEAT_MARKER) :])
    assert body["generation"] == "2026.11.3" and body["keys"]["OAUTH_CLIENT_SECRET"].startswith("sha256:")
    assert "s" * 24 not in line  # fingerprints, never values


def test_logs_query_filters_by_text_and_time_newest_first(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    path = tmp_path / "service-worker.log"
    lines = [
        (now - timedelta(seconds=30), "worker: worker started"),
        (now - timedelta(seconds=20), HEARTBEAT_MARKER + '{"n": 1}'),
        (now - timedelta(seconds=10), HEARTBEAT_MARKER + '{"n": 2}'),
    ]
    path.write_text("half a line from a cut\n" + "".join(f"{_stamp(t)} 4242 {m}\n" for t, m in lines))
    out = logs.query({"srv-w": path}, text=[HEARTBEAT_MARKER.strip()], start=None, end=None, backward=True, limit=1)
    assert [x["message"] for x in out["logs"]] == [HEARTBEAT_MARKER + '{"n": 2}']
    assert out["hasMore"] is True and out["nextEndTime"] == _stamp(lines[1][0])
    labels = {label["name"]: label["value"] for label in out["logs"][0]["labels"]}
    assert labels == {"resource": "srv-w", "instance": "srv-w-4242", "type": "app", "level": "info"}
    early = logs.query({"srv-w": path}, text=[], start=None, end=_stamp(lines[0][0]), backward=False, limit=10)
    assert [x["message"] for x in early["logs"]] == ["worker: worker started"]


class _Logs(RenderProvider):
    def __init__(self, lines: list[tuple[datetime, str]], heartbeat_seconds: float = 1.0):
        super().__init__("http://127.0.0.1:9/v1", "rnd_test", "tea-x", heartbeat_seconds=heartbeat_seconds)
        self.lines = lines

    def log_lines(self, service_id: str, text: str, **kw: Any) -> list[tuple[datetime, str]]:
        return self.lines


@pytest.mark.parametrize(
    ("age", "message", "code", "needle"),
    [
        (0.2, HEARTBEAT_MARKER + '{"generation": "g", "keys": {}, "healthy": true}', 200, None),
        (0.2, HEARTBEAT_MARKER + '{"generation": "g", "keys": {}, "healthy": false}', 503, None),
        (30, HEARTBEAT_MARKER + '{"healthy": true}', 0, "stale"),
        (0.2, HEARTBEAT_MARKER + "not json", 0, "not JSON"),
        (None, "", 0, "no health line"),
    ],
)
def test_the_provider_reads_a_url_less_services_health_from_its_logs(
    age: float | None, message: str, code: int, needle: str | None
) -> None:
    lines = [] if age is None else [(datetime.now(UTC) - timedelta(seconds=age), message)]
    got, body = _Logs(lines).health(WORKER)
    assert got == code, body
    assert "Render logs of worker" in body["via"]
    if needle:
        assert needle in body["error"]
