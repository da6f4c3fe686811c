"""The apply of a point-in-time restore: re-check the window, create a restore point, call restore-pitr,
and poll project status and services health (tenacity, with a deadline) until everything is
``ACTIVE_HEALTHY``; every step is an event of the :class:`Timeline`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from runbooks.plan import Authorisation, require, utcnow
from runbooks.procedures.pitr.plan import PitrPlan
from runbooks.procedures.pitr.target import check_target, iso_utc
from runbooks.providers.base import ProviderError
from runbooks.providers.supabase import HEALTH_SERVICES, SupabaseManagement

HEALTHY = "ACTIVE_HEALTHY"
FAILED_STATES = frozenset({"RESTORE_FAILED", "INIT_FAILED", "REMOVED"})


class PitrFailed(RuntimeError):
    """The restore was started but did not finish healthy within the deadline, or verification failed."""


@dataclass
class Timeline:
    events: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def add(self, event: str, **detail: Any) -> None:
        self.events.append(
            {"at": utcnow().isoformat(), "t_seconds": round(time.monotonic() - self._t0, 2), "event": event, **detail}
        )

    def seconds_between(self, first: str, last: str) -> float | None:
        a = next((e["t_seconds"] for e in self.events if e["event"] == first), None)
        b = next((e["t_seconds"] for e in reversed(self.events) if e["event"] == last), None)
        return None if a is None or b is None else round(b - a, 2)


@dataclass
class _Observed:
    status: str
    health: dict[str, str]

    @property
    def done(self) -> bool:
        return self.status == HEALTHY and all(v == HEALTHY for v in self.health.values())


def wait_healthy(
    sb: SupabaseManagement,
    timeline: Timeline,
    *,
    deadline_s: float,
    poll_s: float = 1.0,
    services: tuple[str, ...] = HEALTH_SERVICES,
) -> None:
    """Poll project status and services health until all are ACTIVE_HEALTHY, within ``deadline_s``."""
    seen: set[str] = set()

    def observe() -> _Observed:
        status = sb.project_status()
        if status not in seen:
            seen.add(status)
            timeline.add("project status", status=status)
        if status in FAILED_STATES:
            raise PitrFailed(
                f"the project reports {status}: the restore failed; open a support ticket with the "
                "restore point name and the timeline"
            )
        health = {h["name"]: h["status"] for h in sb.services_health(services)} if status == HEALTHY else {}
        return _Observed(status, health)

    retrying = Retrying(
        stop=stop_after_delay(deadline_s),
        wait=wait_fixed(poll_s),
        retry=retry_if_result(lambda o: not o.done) | retry_if_exception_type(ProviderError),
    )
    try:
        observed: _Observed = retrying(observe)
    except RetryError as e:
        last = e.last_attempt
        detail = last.exception() if last.failed else last.result()
        raise PitrFailed(f"the project was not healthy within {deadline_s:.0f}s (last: {detail})") from None
    timeline.add("services healthy", services=sorted(observed.health))


def apply_plan(
    sb: SupabaseManagement,
    plan: PitrPlan,
    authorisation: Authorisation,
    *,
    target_unix: int,
    deadline_s: float = 900,
    poll_s: float = 1.0,
    timeline: Timeline | None = None,
) -> Timeline:
    """Re-check the window, restore point, restore-pitr to ``target_unix``, wait until healthy.

    ``authorisation`` is what ``runbooks.guard_apply`` returned (:func:`runbooks.plan.require`). The PITR window
    (and whether PITR is enabled at all) is read again right before the first change: a plan made minutes ago
    may no longer hold (BadParameter, nothing changed).
    """
    require(plan, authorisation)
    tl = timeline or Timeline()
    target = datetime.fromtimestamp(target_unix, UTC)
    window = sb.pitr_window()
    check_target(target, window, utcnow(), sb.project_ref, environment=plan.environment)
    tl.add(
        "window re-checked",
        earliest=iso_utc(window.earliest) if window.earliest else None,
        latest=iso_utc(window.latest) if window.latest else None,
    )
    point = sb.create_restore_point(plan.restore_point)
    tl.add("restore point created", name=point["name"], status=point["status"])
    method, path, body = sb.restore_pitr_request(target_unix)
    tl.add("restore requested", call=f"{method} {path} {body}", target=target.isoformat())
    sb.restore_pitr(target_unix)
    wait_healthy(sb, tl, deadline_s=deadline_s, poll_s=poll_s)
    return tl
