"""Point-in-time restore of the Supabase project: validate, plan, apply, wait, verify, record.

- :func:`make_plan` refuses (:class:`~runbooks.errors.BadParameter` naming the parameter and the fix,
  nothing changed) a missing target outside the sandbox, a target that is malformed, without a zone, in
  the future, outside the PITR window the Management API reports, or when PITR is disabled; it shows the
  exact API call, what becomes unavailable and how long the last restore of this environment took.
- :func:`prepare_apply` fixes the target of the apply and the markers expected on either side of it.
- :func:`apply_plan` re-reads the PITR window and re-checks the target right before the change (the
  window moves, PITR can be switched off between plan and apply), creates a restore point, calls
  restore-pitr, and polls project status and services health (tenacity, with a deadline) until
  everything is ``ACTIVE_HEALTHY``; every step is a timeline event.
- Markers (``restore_markers``, on the twin): :func:`bracket_target` commits a marker, picks the
  target just after it and commits a second marker after the target; :func:`verify_markers` checks
  that markers committed before the target are present and those after it absent. Where there is no
  marker table (or no marker to judge) the verdict is ``WARN``, "not verifiable here", never a pass.

An empty ``target_time`` is allowed only in the ``sandbox``: there it means "now", the moment of the
apply, bracketed by two markers so the rewind is proved. Anywhere else the operator states the instant
(:data:`SANDBOX`): "now" would silently rewind whatever the runbook was run against.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from runbooks.errors import BadParameter
from runbooks.providers.base import ProviderError
from runbooks.providers.postgres import Postgres
from runbooks.providers.supabase import HEALTH_SERVICES, PitrWindow, SupabaseManagement

PROCEDURE = "restore-pitr"
MARKERS_TABLE = "restore_markers"
HEALTHY = "ACTIVE_HEALTHY"
FAILED_STATES = frozenset({"RESTORE_FAILED", "INIT_FAILED", "REMOVED"})
#: the only environment where an empty target_time (= the moment of the apply) is accepted
SANDBOX = "sandbox"
EXAMPLE_TARGET = "2026-11-27T03:15:00Z"


class PitrFailed(RuntimeError):
    """The restore was started but did not finish healthy within the deadline, or verification failed."""


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_target(
    target: datetime, window: PitrWindow, now: datetime, project: str, *, environment: str = "", given: str = ""
) -> None:
    """Refuse (BadParameter) a target the API would refuse, or that would silently restore something else.

    ``given`` is the target as the operator wrote it (shown in the message); ``environment`` names the
    environment whose project has PITR disabled.
    """
    shown = given or _iso(target)
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
            problem = f"is before the PITR window (earliest restorable time: {_iso(window.earliest)})"
        raise BadParameter(
            "target_time", shown, problem, "give a time inside the window, or restore a daily backup instead"
        )
    if window.latest is not None and target.replace(microsecond=0) > window.latest:
        raise BadParameter(
            "target_time",
            shown,
            f"is after the latest restorable time {_iso(window.latest)}",
            "give a time at or before it (WAL after it is not archived yet: wait a minute and re-run)",
        )


def _target_required(environment: str, target_time: str) -> BadParameter:
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
            raise _target_required(environment, target_time)
        return None
    return parse_target(target_time)


def last_restore_seconds(environment: str, archive_root: Path | None = None) -> float | None:
    """How long the last successful restore of ``environment`` took (from the archive), if any."""
    import json

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
class PitrPlan:
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_now(now: datetime | None = None) -> int:
    """The default target ("now"), as the API's whole seconds (rounded down: it must not be in the future)."""
    return math.floor((now or utcnow()).timestamp())


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
    *,
    target_unix: int,
    deadline_s: float = 900,
    poll_s: float = 1.0,
    timeline: Timeline | None = None,
) -> Timeline:
    """Re-check the window, restore point, restore-pitr to ``target_unix``, wait until healthy.

    The caller holds guard + lock. The PITR window (and whether PITR is enabled at all) is read again right
    before the first change: a plan made minutes ago may no longer hold (BadParameter, nothing changed).
    """
    tl = timeline or Timeline()
    target = datetime.fromtimestamp(target_unix, UTC)
    window = sb.pitr_window()
    check_target(target, window, utcnow(), sb.project_ref, environment=plan.environment)
    tl.add(
        "window re-checked",
        earliest=_iso(window.earliest) if window.earliest else None,
        latest=_iso(window.latest) if window.latest else None,
    )
    point = sb.create_restore_point(plan.restore_point)
    tl.add("restore point created", name=point["name"], status=point["status"])
    method, path, body = sb.restore_pitr_request(target_unix)
    tl.add("restore requested", call=f"{method} {path} {body}", target=target.isoformat())
    sb.restore_pitr(target_unix)
    wait_healthy(sb, tl, deadline_s=deadline_s, poll_s=poll_s)
    return tl


# -- markers (what a restore contains) -----------------------------------------------------------------


def markers(pg: Postgres) -> dict[str, datetime] | None:
    """label -> created_at of every marker, or None when the database has no marker table."""
    with pg.connect() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (MARKERS_TABLE,)).fetchone()[0]  # type: ignore[index]
        if exists is None:
            return None
        return {str(label): at for label, at in conn.execute(f"SELECT label, created_at FROM {MARKERS_TABLE}")}


def add_marker(pg: Postgres, label: str) -> datetime:
    """Commit one marker; returns the database clock right after the commit."""
    with pg.connect() as conn:
        conn.execute(f"INSERT INTO {MARKERS_TABLE} (label) VALUES (%s)", (label,))
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index,no-any-return]


def _db_now(pg: Postgres) -> datetime:
    with pg.connect() as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index,no-any-return]


def wait_past(
    pg: Postgres,
    instant: datetime,
    margin: float = 0.3,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 10.0,
) -> None:
    """Sleep until the database clock is ``margin`` seconds past ``instant``."""
    deadline = time.monotonic() + timeout
    while (_db_now(pg) - instant).total_seconds() < margin:
        if time.monotonic() > deadline:
            raise PitrFailed("the database clock did not advance past the target")
        sleep(0.1)


def bracket_target(pg: Postgres, tag: str) -> tuple[int, list[str], list[str]]:
    """Commit a marker, choose the target (next whole second), commit a marker after it.

    Returns (target_unix, labels expected present, labels expected absent).
    """
    before, after = f"{tag}-before", f"{tag}-after"
    committed = add_marker(pg, before)
    target_unix = math.ceil(committed.timestamp())
    wait_past(pg, datetime.fromtimestamp(target_unix, UTC))
    add_marker(pg, after)
    return target_unix, [before], [after]


#: markers created this close before a target are not judged (their commit may land after it)
MARKER_SLACK = timedelta(milliseconds=200)


def expected_markers(
    snapshot: dict[str, datetime], target: datetime, slack: timedelta = MARKER_SLACK
) -> tuple[list[str], list[str]]:
    """From markers seen before the restore: (must be present, must be absent). Markers created within
    ``slack`` of the target (commit time vs insert time) are not judged."""
    present = sorted(k for k, v in snapshot.items() if v <= target - slack)
    absent = sorted(k for k, v in snapshot.items() if v > target)
    return present, absent


@dataclass(frozen=True)
class ApplyTarget:
    """What an apply restores to, and the markers expected on either side of it."""

    target_unix: int
    present: list[str]  #: markers that must survive the restore
    absent: list[str]  #: markers that must be gone after it
    bracketed: bool  #: the target was chosen now, between two markers committed for the purpose

    @property
    def target(self) -> datetime:
        return datetime.fromtimestamp(self.target_unix, UTC)


def prepare_apply(plan: PitrPlan, pg: Postgres, *, tag: str | None = None) -> ApplyTarget:
    """Fix the target of the apply and the markers to judge after it (reads markers; writes only on the twin).

    An explicit target (``plan.target_unix``) is used as planned. Without one, only in the sandbox, the
    target is "now", bracketed by two markers committed for the purpose (:func:`bracket_target`). Markers
    already in the database are split at the target (:func:`expected_markers`).
    """
    before = markers(pg) or {}
    present: list[str] = []
    absent: list[str] = []
    bracketed = False
    if plan.target_unix is not None:
        target_unix = plan.target_unix
    elif plan.environment == SANDBOX:
        target_unix, present, absent = bracket_target(pg, tag or f"pitr-{utcnow():%H%M%S}")
        bracketed = True
    else:  # make_plan refuses this; never fall back to "now" outside the twin
        raise _target_required(plan.environment, "")
    p2, a2 = expected_markers(before, datetime.fromtimestamp(target_unix, UTC))
    return ApplyTarget(target_unix, sorted(set(present) | set(p2)), sorted(set(absent) | set(a2)), bracketed)


def timeline_record(prepared: ApplyTarget, timeline: Timeline) -> dict[str, Any]:
    """The ``pitr_timeline`` result: target, events and how long the restore took."""
    return {
        "target": prepared.target.isoformat(),
        "events": timeline.events,
        "restore_seconds": timeline.seconds_between("restore requested", "services healthy"),
    }


def verify_markers(pg: Postgres, present: list[str], absent: list[str]) -> dict[str, Any]:
    """Verdict on the restored data: ``status`` PASS, FAIL, or WARN when it cannot be verified here.

    ``ok`` is True only for a verified restore; without a marker table (outside the twin) or without any
    marker on either side of the target, nothing is proved and the verdict says so.
    """
    seen = markers(pg)
    verdict: dict[str, Any] = {"expected_present": present, "expected_absent": absent}
    if seen is None or not (present or absent):
        why = (
            f"no {MARKERS_TABLE} table in this database"
            if seen is None
            else "no marker was committed on either side of the target"
        )
        return {
            **verdict,
            "missing": [],
            "unexpectedly_present": [],
            "ok": False,
            "status": "WARN",
            "detail": f"not verifiable here: {why}; check by hand that the data is as at the target "
            "(e.g. the last rows written before it are there, none after it)",
        }
    missing = [m for m in present if m not in seen]
    resurrected = [m for m in absent if m in seen]
    ok = not missing and not resurrected
    return {
        **verdict,
        "missing": missing,
        "unexpectedly_present": resurrected,
        "ok": ok,
        "status": "PASS" if ok else "FAIL",
        "detail": f"{len(present)} marker(s) present, {len(absent)} absent as expected"
        if ok
        else "the restored database is not as at the target",
    }


def conclude(verdict: dict[str, Any], prepared: ApplyTarget) -> str:
    """Raise PitrFailed on a FAIL verdict; otherwise the line to print (a WARN says it was not verified)."""
    at = prepared.target.isoformat()
    if verdict["status"] == "FAIL":
        raise PitrFailed(
            f"the restored database is not as at {at}: missing {verdict['missing']}, "
            f"unexpectedly present {verdict['unexpectedly_present']}"
        )
    if verdict["status"] == "WARN":
        return f"WARNING: restored to {at}, but {verdict['detail']}"
    return f"restored to {at}: {verdict['detail']}"
