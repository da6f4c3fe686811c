"""Schedule compliance data for the audit site (``runbooks audit site --compliance FILE``).

The scheduler (built separately) decides, per schedule, which slots were due and what became of each; the
site only shows it. The file is JSON (see docs/AUDIT_SITE.md)::

    {"generated_at": "2026-11-30T06:00:00Z",
     "schedules": [{"procedure": "nightly-backup", "environment": "production", "cron": "17 3 * * *",
                    "slots": [{"due": "2026-11-29T03:17:00Z", "status": "ran", "run_id": "2026...-3f9a1c"},
                              {"due": "2026-11-28T03:17:00Z", "status": "missed", "detail": "no run"}]}]}

``status`` is one of ``ran`` (on time), ``late`` (ran, after its grace), ``failed`` (ran, did not succeed)
and ``missed`` (no run).

The report of ``runbooks schedule compliance --env E --json`` (``{"environment": ..., "slots": [{"procedure",
"slot", "verdict", "run_id", ...}]}``) is accepted as it is and converted (``from_schedule_report``): verdicts
``on_time`` -> ``ran``, ``late``, ``failed``, ``missed``; ``pending`` slots (not yet due past their tolerance) are
left out.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SlotStatus(StrEnum):
    RAN = "ran"
    LATE = "late"
    FAILED = "failed"
    MISSED = "missed"


class Slot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due: datetime
    status: SlotStatus
    run_id: str | None = None
    detail: str = ""


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    procedure: str
    environment: str
    cron: str = ""
    slots: list[Slot] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for slot in self.slots if slot.status is s) for s in SlotStatus}


class Compliance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generated_at: datetime | None = None
    schedules: list[Schedule]


class ComplianceFileError(ValueError):
    """The --compliance file is unreadable or not of the documented shape."""


_VERDICTS = {"on_time": "ran", "late": "late", "failed": "failed", "missed": "missed"}


def from_schedule_report(report: dict[str, Any]) -> dict[str, Any]:
    """``runbooks schedule compliance --json`` output -> this module's shape (one schedule per procedure)."""
    env = str(report.get("environment", ""))
    by_proc: dict[str, list[dict[str, Any]]] = {}
    for slot in report.get("slots", []):
        verdict = _VERDICTS.get(str(slot.get("verdict")))
        if verdict is None:  # pending: not due yet
            continue
        row: dict[str, Any] = {"due": slot["slot"], "status": verdict, "run_id": slot.get("run_id")}
        if slot.get("run_status") and verdict != "ran":
            row["detail"] = f"run status {slot['run_status']}"
        by_proc.setdefault(str(slot["procedure"]), []).append(row)
    schedules: list[dict[str, Any]] = []
    for proc, slots in sorted(by_proc.items()):
        slots.sort(key=lambda r: str(r["due"]), reverse=True)
        schedules.append({"procedure": proc, "environment": env, "slots": slots})
    return {"generated_at": report.get("until"), "schedules": schedules}


def load_compliance(path: Path) -> Compliance:
    """Read and validate a compliance file; errors name the file, the field and the fix."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ComplianceFileError(
            f"--compliance {path}: cannot read it ({exc.strerror}); give an existing file"
        ) from None
    try:
        raw = json.loads(data)
        if isinstance(raw, dict) and "schedules" not in raw and "slots" in raw:
            raw = from_schedule_report(raw)
        return Compliance.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise ComplianceFileError(f"--compliance {path}: not JSON ({exc.msg}); give the JSON file") from None
    except (KeyError, TypeError) as exc:
        raise ComplianceFileError(
            f"--compliance {path}: not a `runbooks schedule compliance --json` report ({exc!r}); "
            "see docs/AUDIT_SITE.md for the shape"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ComplianceFileError(
            f"--compliance {path}: {where}: {first['msg']} ({exc.error_count()} problem(s)); "
            "see docs/AUDIT_SITE.md for the shape"
        ) from None
