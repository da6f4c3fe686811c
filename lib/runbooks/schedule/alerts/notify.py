"""The decisions: after a scheduled run (alert on a failure, resolve after the first success that follows one)
and after missed slots. Returns what was sent, for the record: a delivery that failed stays visible there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from runbooks.inventory.models import AlertChannels
from runbooks.schedule.alerts import incidents, message
from runbooks.schedule.alerts.delivery import Delivery, deliver

if TYPE_CHECKING:
    from runbooks.archive.stores import ArchiveStore


def _channels(environment: str) -> AlertChannels:
    from runbooks.inventory import load

    return load(environment).schedules.alerts


def after_run(
    *,
    procedure: str,
    environment: str,
    status: str,
    run_id: str,
    error: str,
    results: dict[str, Any],
    archive_root: Path | str | ArchiveStore,
    scrub: Callable[[str], str],
    channels: AlertChannels | None = None,
    client: httpx.Client | None = None,
) -> list[Delivery]:
    """Alert on an alerting status; resolve an open incident on success; nothing otherwise."""
    if status in message.ALERTING:
        alert = message.for_run(procedure, environment, status, run_id, error, results, scrub)
        incidents.open_incident(archive_root, environment, procedure, status, run_id)
    elif status == "succeeded" and incidents.get(archive_root, environment, procedure):
        alert = message.resolution(procedure, environment, run_id)
    else:
        return []
    sent = deliver(alert, channels or _channels(environment), client=client)
    if alert.status == "resolved" and all(d.delivered for d in sent):
        incidents.close_incident(archive_root, environment, procedure)
    return sent


def after_missed(
    *,
    procedure: str,
    environment: str,
    slots: list[str],
    archive_root: Path | str | ArchiveStore,
    channels: AlertChannels | None = None,
    client: httpx.Client | None = None,
) -> list[Delivery]:
    alert = message.for_missed(procedure, environment, slots)
    incidents.open_incident(archive_root, environment, procedure, "missed", slots[-1] if slots else None)
    return deliver(alert, channels or _channels(environment), client=client)
