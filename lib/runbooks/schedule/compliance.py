"""Schedule compliance: every slot of every enabled schedule in a period, matched to the archive.

A slot is matched to a run in this order: the run its claim recorded (``run-due``), else the first scheduled run
(``trigger=schedule``) of that procedure and environment that started in the slot's window ``[slot, next
slot)`` (Render cron jobs, which claim nothing). Verdicts:

- ``on_time``: succeeded, started within the tolerance (``schedules.late_tolerance_minutes``) of the slot;
- ``late``: succeeded, started later than that;
- ``failed``: the run ended ``failed``, ``timed_out``, ``kernel_died``, ``interrupted`` or ``refused`` (or the
  runner could not run it);
- ``missed``: no run, and the tolerance has passed (or run-due recorded the slot as missed);
- ``pending``: no run yet, still within the tolerance.

The start of a run claimed by run-due is the instant of the claim (run-due's ``now``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from runbooks.archive.index import IndexedRun
from runbooks.schedule import cron
from runbooks.schedule.catalogue import Schedule
from runbooks.schedule.claims import SlotClaims, SlotKey

VERDICTS = ("on_time", "late", "failed", "missed", "pending")
FAILING = ("missed", "failed")


@dataclass(frozen=True)
class SlotVerdict:
    procedure: str
    slot: datetime
    verdict: str
    run_id: str | None = None
    run_status: str | None = None
    delay_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["slot"] = self.slot.isoformat()
        return d


def _verdict_of(status: str, delay: float, tolerance: timedelta) -> str:
    if status != "succeeded":
        return "failed"
    return "on_time" if delay <= tolerance.total_seconds() else "late"


def judge(
    schedule: Schedule,
    since: datetime,
    now: datetime,
    runs: Iterable[IndexedRun],
    claims: SlotClaims,
    tolerance: timedelta,
) -> list[SlotVerdict]:
    """The verdict of every slot of ``schedule`` in ``[since, now]``."""
    since, now = cron.utc(since), cron.utc(now)
    slots = cron.slots_between(schedule.cron, since - timedelta(microseconds=1), now)
    by_id = {r.run_id: r for r in runs}
    timed = sorted(
        (r for r in by_id.values() if r.trigger == "schedule" and r.procedure == schedule.procedure),
        key=lambda r: r.started_at,
    )
    keys = [SlotKey(schedule.environment, schedule.procedure, x) for x in slots]
    results = [claims.result(k) for k in keys]
    used = {r.get("run_id") for r in results if r}  # runs linked to a claimed slot are not matched by time
    ends = [*slots[1:], cron.next_slot(schedule.cron, slots[-1])] if slots else []
    cursor = 0  # windows are disjoint and ordered, and so are the runs: one pass over both
    out: list[SlotVerdict] = []
    for slot, end, key, result in zip(slots, ends, keys, results, strict=True):
        claim = claims.get(key) if result else None
        run: IndexedRun | None = None
        started: datetime | None = None
        if result and result.get("run_id") in by_id:
            run = by_id[result["run_id"]]
            started = datetime.fromisoformat(claim["at"]) if claim and claim.get("at") else run.started_at
        elif claim and claim.get("action") == "missed":
            out.append(SlotVerdict(schedule.procedure, slot, "missed", run_status="missed"))
            continue
        elif result and result.get("status") == "runner_error":
            out.append(SlotVerdict(schedule.procedure, slot, "failed", run_status="runner_error"))
            continue
        else:
            while cursor < len(timed) and (cron.utc(timed[cursor].started_at) < slot or timed[cursor].run_id in used):
                cursor += 1
            run = None
            if cursor < len(timed) and cron.utc(timed[cursor].started_at) < end:
                run, cursor = timed[cursor], cursor + 1
            started = run.started_at if run else None
        if run is not None and started is not None:
            delay = (cron.utc(started) - slot).total_seconds()
            out.append(
                SlotVerdict(
                    schedule.procedure,
                    slot,
                    _verdict_of(run.status, delay, tolerance),
                    run.run_id,
                    run.status,
                    round(delay, 1),
                )
            )
        else:
            verdict = "pending" if now < slot + tolerance else "missed"
            out.append(SlotVerdict(schedule.procedure, slot, verdict))
    return out


def summarize(verdicts: Iterable[SlotVerdict]) -> dict[str, dict[str, int]]:
    """procedure -> verdict -> count."""
    out: dict[str, dict[str, int]] = {}
    for v in verdicts:
        row = out.setdefault(v.procedure, dict.fromkeys(VERDICTS, 0))
        row[v.verdict] += 1
    return out


def compliant(verdicts: Iterable[SlotVerdict]) -> bool:
    return not any(v.verdict in FAILING for v in verdicts)
