"""HTTP of the alert receivers: ``POST /slack/services/...`` (incoming webhook), ``POST /v2/enqueue`` (PagerDuty
Events API v2), and the twin's controls under ``/__twin`` (requests seen, fail the next N, clear)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from runbooks.sandbox.emulators.alerts.inbox import Inbox
from runbooks.sandbox.emulators.common import EmulatorArgs

WEBHOOK_SECRET = "alert_slack_webhook_url"
ROUTING_KEY_SECRET = "alert_pagerduty_routing_key"
FAULT_DOWN = "alerts-unreachable"


def _secret(args: EmulatorArgs, name: str) -> str:
    path = args.root / "secrets" / name
    return path.read_text().strip() if path.is_file() else ""


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def create_app(args: EmulatorArgs) -> FastAPI:
    inbox = Inbox(args.state_dir, always_fail=FAULT_DOWN in args.faults)
    app = FastAPI(title="alert receivers twin")

    @app.post("/slack/{path:path}")
    async def slack(path: str, request: Request) -> Response:
        expected = _secret(args, WEBHOOK_SECRET).rsplit("/slack/", 1)[-1]
        ok = bool(expected) and hmac.compare_digest(path, expected)
        answer = inbox.slack(await _json(request), ok)
        return PlainTextResponse(str(answer.body), status_code=answer.status)

    @app.post("/v2/enqueue")
    async def enqueue(request: Request) -> Response:
        answer = inbox.pagerduty(await _json(request), _secret(args, ROUTING_KEY_SECRET))
        return JSONResponse(answer.body, status_code=answer.status)

    @app.get("/__twin/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "requests": len(inbox.requests())}

    @app.get("/__twin/requests")
    def requests() -> dict[str, Any]:
        return {"requests": inbox.requests(), "open_incidents": sorted(inbox.incidents)}

    @app.post("/__twin/fail")
    def fail(count: int = Body(..., embed=True), status: int = Body(503, embed=True)) -> dict[str, Any]:
        inbox.fail_next(count, status)
        return {"failing_next": count, "status": status}

    @app.delete("/__twin/requests")
    def clear() -> dict[str, Any]:
        inbox.clear()
        return {"cleared": True}

    return app
