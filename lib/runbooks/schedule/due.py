"""``runbooks schedule run-due``: the single-host engine, called every minute by cron or a systemd timer.

For each enabled schedule of the environment, at the instant ``now``:

- its *latest slot* (the last one at or before ``now``) is due if it has not been claimed yet;
- catch-up policy: the slots between the last claimed slot and the latest one were missed (the host was down,
  or run-due was not called); each is claimed as ``missed`` and announced once, and only the latest slot runs.
  A schedule never claimed before starts with its latest slot (history before installation is not "missed"
  by run-due; ``schedule compliance`` still reports it from the archive); missed slots older than
  :data:`CATCH_UP_HORIZON` (a week) are not claimed one by one (compliance reports them all the same);
- a slot is claimed (:mod:`runbooks.schedule.claims`) before it runs, so two run-due calls at the same
  instant, on one host or several sharing the archive, run it once;
- the run goes through the runner with ``trigger=schedule`` and the alert hook; the claim's result records
  the run id and status.

Procedures run one after another; a destructive one still takes the environment lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbooks.schedule import cron
from runbooks.schedule.catalogue import Schedule
from runbooks.schedule.claims import SlotClaims, SlotKey


@dataclass
class DueAction:
    procedure: str
    slot: str
    #: "run" | "missed"
    action: str
    run_id: str | None = None
    status: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Runner = Callable[..., Any]
#: how far back run-due records missed slots one by one
CATCH_UP_HORIZON = timedelta(days=7)


if TYPE_CHECKING:
    from runbooks.archive.stores import ArchiveStore


def _default_runner(**kwargs: Any) -> Any:
    from runbooks.runner.run import run_procedure
    from runbooks.schedule.hook import on_scheduled_run_end

    return run_procedure(**kwargs, on_end=on_scheduled_run_end)


def pending_slots(schedule: Schedule, claimed: list[datetime], now: datetime) -> list[datetime]:
    """The slots not claimed yet, oldest first, per the catch-up policy (the last one is to run)."""
    latest = cron.latest_slot(schedule.cron, now)
    if not claimed:
        return [latest]
    if claimed[-1] >= latest:
        return []
    # a schedule left alone for long (disabled, host gone) records at most a week of missed slots; older ones
    # stay missed in ``compliance`` (no run) without a claim each
    start = max(claimed[-1], now - CATCH_UP_HORIZON)
    return cron.slots_between(schedule.cron, start, now) or [latest]


def run_due(
    schedules: list[Schedule],
    now: datetime,
    claims: SlotClaims,
    *,
    archive_root: Path | str | ArchiveStore,
    timeout: float | None = None,
    runner: Runner = _default_runner,
    on_missed: Callable[[Schedule, list[str]], list[dict[str, Any]]] | None = None,
) -> list[DueAction]:
    """Run what is due at ``now`` among ``schedules`` (enabled ones); what was done, in order."""
    now = cron.utc(now)
    actions: list[DueAction] = []
    for s in schedules:
        if not s.enabled:
            continue
        pending = pending_slots(s, claims.claimed_slots(s.environment, s.procedure), now)
        if not pending:
            continue
        *missed, latest = pending
        won = [slot for slot in missed if claims.claim(SlotKey(s.environment, s.procedure, slot), "missed", at=now)]
        if won:
            ids = [cron.slot_id(x) for x in won]
            alerts = on_missed(s, ids) if on_missed else []
            for slot in won:
                claims.record_result(SlotKey(s.environment, s.procedure, slot), status="missed", alerts=alerts)
                actions.append(DueAction(s.procedure, cron.slot_id(slot), "missed", alerts=alerts))
        key = SlotKey(s.environment, s.procedure, latest)
        if not claims.claim(key, "run", at=now):
            continue  # another run-due has it
        action = DueAction(s.procedure, cron.slot_id(latest), "run")
        try:
            outcome = runner(
                name_or_path=s.procedure,
                params=dict(s.params),
                environment=s.environment,
                timeout=timeout,
                trigger="schedule",
                archive_root=archive_root if isinstance(archive_root, (str, Path)) else archive_root.url,
            )
            action.run_id, action.status = outcome.run_id, outcome.status.value
        except Exception as e:  # the runner could not run or archive it: the claim says why
            action.status = "runner_error"
            claims.record_result(key, status="runner_error", error=f"{type(e).__name__}: {e}")
        else:
            claims.record_result(key, run_id=action.run_id, status=action.status)
        actions.append(action)
    return actions


def missed_notifier(archive_root: Path | str | ArchiveStore) -> Callable[[Schedule, list[str]], list[dict[str, Any]]]:
    def notify(s: Schedule, slots: list[str]) -> list[dict[str, Any]]:
        from runbooks.schedule.alerts.notify import after_missed

        sent = after_missed(procedure=s.procedure, environment=s.environment, slots=slots, archive_root=archive_root)
        return [d.as_dict() for d in sent]

    return notify
