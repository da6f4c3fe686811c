"""The runner's ``on_end`` hook for scheduled runs (``--trigger schedule``): alerts after a failure, the resolve
after the next success; what was sent (delivered or not) is added to the run's own record as ``alerts``."""

from __future__ import annotations

from typing import Any

from runbooks.runner.run import RunEnd


def on_scheduled_run_end(end: RunEnd) -> dict[str, Any]:
    if end.trigger != "schedule":
        return {}
    from runbooks.schedule.alerts.notify import after_run

    sent = after_run(
        procedure=end.procedure,
        environment=end.environment,
        status=end.status.value,
        run_id=end.run_id,
        error=f"{end.error.kind}: {end.error.message}" if end.error else "",
        results=end.results,
        archive_root=end.archive,
        scrub=end.scrub,
    )
    return {"alerts": [d.as_dict() for d in sent]} if sent else {}
