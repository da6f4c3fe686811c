"""The plan of a point-in-time restore: the request validated against the API's PITR window, and exactly
what the apply will do (the API call, what becomes unavailable, how long the last restore took)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runbooks.plan import Plan, utcnow
from runbooks.procedures.pitr.target import check_target, validate_request
from runbooks.providers.supabase import HEALTH_SERVICES, SupabaseManagement

PROCEDURE = "restore-pitr"


def last_restore_seconds(environment: str, archive_root: Path | None = None) -> float | None:
    """How long the last successful restore of ``environment`` took (from the archive), if any."""
    from runbooks.archive.store import Archive

    try:
        runs = Archive(archive_root).index.query(
            procedure=PROCEDURE, status="succeeded", environment=environment, limit=20
        )
    except Exception:  # an unreadable index must not block a restore plan
        return None
    for run in runs:
        raw = Archive(archive_root).index.manifest_json(run.run_id)
        results = json.loads(raw).get("results", {}) if raw else {}
        seconds = (results.get("pitr_timeline") or {}).get("restore_seconds")
        if seconds is not None:
            return float(seconds)
    return None


@dataclass
class PitrPlan(Plan):
    """The request, already validated against the window by :func:`make_plan` (a bad one is refused there with
    ``BadParameter``): nothing more to judge before the gate; :func:`~.apply.apply_plan` checks the window
    again right before the change."""

    environment: str
    project_ref: str
    reason: str
    target: str  #: ISO 8601 UTC, or "now (at apply)"
    target_unix: int | None
    api_call: str
    window: dict[str, str | bool | None]
    unavailable: list[str]
    last_restore_seconds: float | None
    restore_point: str

    def problems(self) -> list[str]:
        return []

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def restore_point_name(now: datetime) -> str:
    return f"pre-pitr-{now:%m%d%H%M%S}"  # at most 20 characters (the API's limit)


def make_plan(
    sb: SupabaseManagement,
    *,
    environment: str,
    target_time: str,
    reason: str,
    now: datetime | None = None,
    archive_root: Path | None = None,
) -> PitrPlan:
    """Validate the request against the API's PITR window and describe exactly what apply will do."""
    now = now or utcnow()
    target = validate_request(environment=environment, target_time=target_time, reason=reason)
    window = sb.pitr_window()
    check_target(
        target or now.replace(microsecond=0), window, now, sb.project_ref, environment=environment, given=target_time
    )
    # the API takes whole seconds: round down, never restore a commit made after the stated time
    target_unix = math.floor(target.timestamp()) if target else None
    method, path, body = sb.restore_pitr_request(target_unix if target_unix is not None else 0)
    shown_body = body if target_unix is not None else {"recovery_time_target_unix": "<now, at apply>"}
    return PitrPlan(
        environment=environment,
        project_ref=sb.project_ref,
        reason=reason.strip(),
        target=target.isoformat() if target else "now (at apply)",
        target_unix=target_unix,
        api_call=f"{method} {path} {shown_body}",
        window={
            "pitr_enabled": window.enabled,
            "earliest": window.earliest.isoformat() if window.earliest else None,
            "latest": window.latest.isoformat() if window.latest else None,
        },
        unavailable=[f"{s}: unavailable while the project is RESTORING" for s in HEALTH_SERVICES]
        + ["every write committed after the target time is lost (a restore point is created first)"],
        last_restore_seconds=last_restore_seconds(environment, archive_root),
        restore_point=restore_point_name(now),
    )
