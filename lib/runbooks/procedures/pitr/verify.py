"""What a restore contains, proved with markers (rows of ``restore_markers``, on the twin).

:func:`prepare_apply` fixes the target of the apply and the markers expected on either side of it
(:func:`bracket_target` commits a marker, picks the target just after it and commits a second marker
after the target); :func:`verify_markers` checks that markers committed before the target are present
and those after it absent. Where there is no marker table (or no marker to judge) the verdict is
``WARN``, "not verifiable here", never a pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.plan import utcnow
from runbooks.procedures.pitr.apply import PitrFailed, Timeline
from runbooks.procedures.pitr.plan import PitrPlan
from runbooks.procedures.pitr.target import SANDBOX, target_required
from runbooks.providers.postgres import Postgres

MARKERS_TABLE = "restore_markers"
#: markers created this close before a target are not judged (their commit may land after it)
MARKER_SLACK = timedelta(milliseconds=200)


def markers(pg: Postgres) -> dict[str, datetime] | None:
    """label -> created_at of every marker, or None when the database has no marker table."""
    with pg.connect() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (MARKERS_TABLE,)).fetchone()[0]  # type: ignore[index]  # one-row query: fetchone() is never None here
        if exists is None:
            return None
        return {str(label): at for label, at in conn.execute(f"SELECT label, created_at FROM {MARKERS_TABLE}")}


def add_marker(pg: Postgres, label: str) -> datetime:
    """Commit one marker; returns the database clock right after the commit."""
    with pg.connect() as conn:
        conn.execute(f"INSERT INTO {MARKERS_TABLE} (label) VALUES (%s)", (label,))
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]  # one-row query: fetchone() is never None here


def _db_now(pg: Postgres) -> datetime:
    with pg.connect() as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]  # one-row query: fetchone() is never None here


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
        raise target_required(plan.environment, "")
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
