"""The target time of a point-in-time restore: parsing, the request checks that need no API, and the
check against the PITR window the Management API reports.

An empty ``target_time`` is allowed only in the sandbox (:data:`SANDBOX`): there it means "now", the
moment of the apply. Anywhere else the operator states the instant: "now" would silently rewind whatever
the runbook was run against.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from runbooks.errors import BadParameter
from runbooks.plan import utcnow
from runbooks.providers.supabase import PitrWindow

#: the only environment where an empty target_time (= the moment of the apply) is accepted
SANDBOX = "sandbox"
EXAMPLE_TARGET = "2026-11-27T03:15:00Z"


def iso_utc(t: datetime) -> str:
    """``t`` in UTC as ISO 8601 with a ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_target(text: str) -> datetime:
    """An ISO 8601 timestamp *with a zone* (``Z`` or ``+hh:mm``), as UTC."""
    raw = text.strip()
    try:
        t = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadParameter(
            "target_time", text, "not an ISO 8601 timestamp", f"give one with a zone, e.g. {EXAMPLE_TARGET}"
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise BadParameter(
            "target_time",
            text,
            "has no zone, so the instant is ambiguous",
            f"add Z (UTC) or an offset such as +01:00, e.g. {EXAMPLE_TARGET}",
        )
    return t.astimezone(UTC)


def check_target(
    target: datetime, window: PitrWindow, now: datetime, project: str, *, environment: str = "", given: str = ""
) -> None:
    """Refuse (BadParameter) a target the API would refuse, or that would silently restore something else.

    ``given`` is the target as the operator wrote it (shown in the message); ``environment`` names the
    environment whose project has PITR disabled.
    """
    shown = given or iso_utc(target)
    if not window.enabled:
        raise BadParameter(
            "environment",
            environment or project,
            f"point-in-time recovery is disabled for project {project}",
            "enable the PITR add-on for the project, or restore a daily backup instead",
            allowed=[environment] if environment else None,  # validated against the inventories: may be shown
        )
    if target > now:
        raise BadParameter(
            "target_time",
            shown,
            f"is in the future (now {now:%Y-%m-%dT%H:%M:%SZ})",
            "give the last instant before the damage, in the past",
        )
    if window.earliest is None or target < window.earliest:
        if window.earliest is None:
            problem = "is before the PITR window: there is no physical backup yet, so nothing is restorable"
        else:
            problem = f"is before the PITR window (earliest restorable time: {iso_utc(window.earliest)})"
        raise BadParameter(
            "target_time", shown, problem, "give a time inside the window, or restore a daily backup instead"
        )
    if window.latest is not None and target.replace(microsecond=0) > window.latest:
        raise BadParameter(
            "target_time",
            shown,
            f"is after the latest restorable time {iso_utc(window.latest)}",
            "give a time at or before it (WAL after it is not archived yet: wait a minute and re-run)",
        )


def target_required(environment: str, target_time: str) -> BadParameter:
    """The refusal of an empty target outside the sandbox."""
    return BadParameter(
        "target_time",
        target_time,
        f"is required in {environment or 'this environment'}: an empty target means 'now' only in the sandbox",
        f"give the last instant before the damage with a zone, e.g. -p target_time={EXAMPLE_TARGET}",
    )


def validate_request(*, environment: str, target_time: str, reason: str) -> datetime | None:
    """The checks that need no API: a reason, a target outside the sandbox, a well-formed zoned target.

    Returns the target (UTC) or None (sandbox only: "now", at apply). Run first, before any credential is
    read, so that a bad request is refused even where the environment cannot be reached.
    """
    if not reason.strip():
        raise BadParameter(
            "reason", reason, "is empty", "say why the database is being restored (it goes into the record)"
        )
    if not target_time.strip():
        if environment != SANDBOX:
            raise target_required(environment, target_time)
        return None
    return parse_target(target_time)


def target_now(now: datetime | None = None) -> int:
    """The default target ("now"), as the API's whole seconds (rounded down: it must not be in the future)."""
    return math.floor((now or utcnow()).timestamp())
