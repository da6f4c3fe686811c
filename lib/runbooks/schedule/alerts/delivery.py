"""Delivery of an alert to the inventory's channels, retried with exponential backoff (httpx + tenacity).

Each channel gives one :class:`Delivery` (delivered or not, attempts, a short reason that never repeats the
URL or the key). The webhook URL and the routing key are resolved with :func:`runbooks.secrets.secret`, which
registers them for redaction. A channel that is not configured is skipped; one whose secret does not resolve
is a failed delivery (recorded, never raised).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from runbooks.inventory.models import AlertChannels
from runbooks.schedule.alerts import formats
from runbooks.schedule.alerts.message import Alert

TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    channel: str  #: "slack" | "pagerduty"
    action: str  #: "trigger" | "resolve"
    delivered: bool
    attempts: int
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Retryable(Exception):
    """A transient failure: network error, HTTP 429 or 5xx."""


class _Permanent(Exception):
    """The receiver refused the request (another 4xx): retrying would not help."""


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    try:
        r = client.post(url, json=body)
    except httpx.HTTPError as e:  # the message may contain the URL: only the class is kept
        raise _Retryable(type(e).__name__) from None
    if r.status_code == 429 or r.status_code >= 500:
        raise _Retryable(f"HTTP {r.status_code}")
    if r.status_code >= 400:
        raise _Permanent(f"HTTP {r.status_code}")


def send(
    url: str, body: dict[str, Any], *, attempts: int, backoff: float, client: httpx.Client | None = None
) -> tuple[bool, int, str]:
    """POST ``body`` until it is accepted or ``attempts`` are spent: (delivered, attempts made, reason)."""
    made = 0
    own = client is None
    c = client or httpx.Client(timeout=TIMEOUT)
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=backoff, max=30),
            retry=retry_if_exception_type(_Retryable),
            reraise=False,
        ):
            with attempt:
                made += 1
                _post(c, url, body)
        return True, made, ""
    except RetryError as e:
        cause = e.last_attempt.exception()
        return False, made, f"gave up after {made} attempt(s): {cause}"
    except _Permanent as e:
        return False, made, f"refused by the receiver: {e}"
    finally:
        if own:
            c.close()


def _secret(ref: str) -> str:
    from runbooks.secrets import secret

    return secret(ref)


def deliver(
    alert: Alert,
    channels: AlertChannels,
    *,
    resolve_secret: Callable[[str], str] = _secret,
    client: httpx.Client | None = None,
) -> list[Delivery]:
    """Send ``alert`` to every configured channel; a resolution goes to both (PagerDuty ``resolve``)."""
    action = "resolve" if alert.status == "resolved" else "trigger"
    out: list[Delivery] = []
    targets: list[tuple[str, str, Callable[[str], tuple[str, dict[str, Any]]]]] = []
    if channels.slack_webhook:
        targets.append(("slack", channels.slack_webhook, lambda url: (url, formats.slack(alert))))
    if channels.pagerduty_routing_key:
        events_url = channels.pagerduty_events_url
        targets.append(
            ("pagerduty", channels.pagerduty_routing_key, lambda key: (events_url, formats.pagerduty(alert, key)))
        )
    for name, ref, build in targets:
        try:
            value = resolve_secret(ref)
        except Exception as e:  # SecretError names the reference, never a value
            out.append(Delivery(name, action, False, 0, f"{type(e).__name__}: {e}"))
            continue
        url, body = build(value)
        ok, made, reason = send(url, body, attempts=channels.attempts, backoff=channels.backoff_seconds, client=client)
        out.append(Delivery(name, action, ok, made, reason))
    return out
