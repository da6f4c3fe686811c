"""The alerts component: local receivers of the scheduled runs' alerts, a Slack-compatible incoming webhook and
the PagerDuty Events API v2 (``python -m runbooks.sandbox.emulators.alerts``).

Start: the secrets ``alert_slack_webhook_url`` (the webhook URL, with its secret path) and
``alert_pagerduty_routing_key`` are written, the receivers start, and the overlay points
``schedules.alerts.pagerduty_events_url`` at them. Requests are kept in ``<root>/alerts/requests.jsonl`` and
at ``GET /__twin/requests``; ``POST /__twin/fail {"count": N}`` makes the next N requests answer 503.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import ClassVar

import httpx

from runbooks.sandbox.component import Component, ComponentState, FaultDeclaration, FaultSpec, SandboxContext
from runbooks.sandbox.emulators.alerts.app import FAULT_DOWN, ROUTING_KEY_SECRET, WEBHOOK_SECRET

NAME = "alerts"
FAULTS: dict[str, FaultDeclaration] = {
    FAULT_DOWN: FaultSpec(
        "the alert receivers answer 503 to every request (alerts cannot be delivered)",
        not_caught="it breaks the alert receivers, not the hosting: it exercises the scheduler's delivery retries "
        "(tests/e2e/test_schedule_render_path.py)",
    )
}


class AlertsComponent(Component):
    name: ClassVar[str] = NAME
    faults: ClassVar[Mapping[str, FaultDeclaration]] = FAULTS

    def start(self, ctx: SandboxContext) -> ComponentState:
        pid, address = ctx.spawn_emulator(NAME, "runbooks.sandbox.emulators.alerts", FAULTS)
        path = f"services/T0TWIN/B0TWIN/{secrets.token_hex(12)}"
        ctx.write_secret(WEBHOOK_SECRET, f"{address}/slack/{path}")
        ctx.write_secret(ROUTING_KEY_SECRET, secrets.token_hex(16))
        ctx.merge_overlay({"schedules": {"alerts": {"pagerduty_events_url": f"{address}/v2/enqueue"}}})
        return ComponentState(NAME, address, [pid], {"requests": f"{address}/__twin/requests"})

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        try:
            r = httpx.get(f"{state.address}/__twin/health", timeout=2.0)
        except httpx.HTTPError as e:
            return False, f"not answering: {type(e).__name__}"
        if r.status_code != 200:
            return False, f"GET /__twin/health: HTTP {r.status_code}"
        return True, f"{r.json()['requests']} request(s) received"
