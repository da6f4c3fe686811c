"""What an alert says: procedure, environment, status, the first failing checks with their remediation, the run
id and how to open the record. Every text goes through the caller's scrubber: an alert never carries a secret."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: statuses of a scheduled run that alert (``refused`` and ``succeeded`` do not)
ALERTING = ("failed", "timed_out", "kernel_died", "interrupted")
MAX_CHECKS = 5


@dataclass(frozen=True)
class FailedCheck:
    check: str
    subject: str
    evidence: str
    remediation: str


@dataclass(frozen=True)
class Alert:
    procedure: str
    environment: str
    #: a run status, "missed", or "resolved"
    status: str
    summary: str
    run_id: str | None = None
    checks: tuple[FailedCheck, ...] = ()
    detail: str = ""
    #: how to open the record (a command)
    open_with: str = ""
    missed_slots: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dedup_key(self) -> str:
        """Stable per procedure and environment: one incident per schedule, resolved by its next clean run."""
        return f"runbooks/{self.environment}/{self.procedure}"

    def lines(self) -> list[str]:
        out = [self.summary]
        if self.run_id:
            out.append(f"run: {self.run_id}")
        if self.detail:
            out.append(self.detail)
        for c in self.checks:
            out.append(f"- {c.check} {c.subject}: {c.evidence}" + (f" -> {c.remediation}" if c.remediation else ""))
        if self.missed_slots:
            out.append("missed slots (UTC): " + ", ".join(self.missed_slots))
        if self.open_with:
            out.append(f"open the record: {self.open_with}")
        return out


def failing_checks(results: dict[str, Any], limit: int = MAX_CHECKS) -> list[FailedCheck]:
    """The first FAIL rows of any recorded table of checks (``checks``, ``findings``, ...), in record order."""
    out: list[FailedCheck] = []
    for value in results.values():
        rows = value if isinstance(value, list) else []
        for row in rows:
            if isinstance(row, dict) and str(row.get("status", "")).upper() == "FAIL":
                out.append(
                    FailedCheck(
                        str(row.get("check", "")),
                        str(row.get("subject", "")),
                        str(row.get("evidence", "")),
                        str(row.get("remediation", "")),
                    )
                )
                if len(out) >= limit:
                    return out
    return out


def _scrub_checks(checks: Iterable[FailedCheck], scrub: Callable[[str], str]) -> tuple[FailedCheck, ...]:
    return tuple(FailedCheck(*(scrub(x) for x in (c.check, c.subject, c.evidence, c.remediation))) for c in checks)


def for_run(
    procedure: str,
    environment: str,
    status: str,
    run_id: str,
    error: str,
    results: dict[str, Any],
    scrub: Callable[[str], str],
) -> Alert:
    checks = _scrub_checks(failing_checks(results), scrub)
    return Alert(
        procedure=procedure,
        environment=environment,
        status=status,
        summary=f"[{environment}] scheduled {procedure}: {status}",
        run_id=run_id,
        checks=checks,
        detail=scrub(error)[:500] if error else "",
        open_with=f"runbooks runs show {run_id}",
    )


def for_missed(procedure: str, environment: str, slots: list[str]) -> Alert:
    return Alert(
        procedure=procedure,
        environment=environment,
        status="missed",
        summary=f"[{environment}] scheduled {procedure}: {len(slots)} slot(s) missed",
        missed_slots=tuple(slots),
        detail="the slots were not run (the host was down or run-due was not called); the latest was caught up",
        open_with=f"runbooks schedule compliance --env {environment} --since 7d",
    )


def resolution(procedure: str, environment: str, run_id: str) -> Alert:
    return Alert(
        procedure=procedure,
        environment=environment,
        status="resolved",
        summary=f"[{environment}] scheduled {procedure}: succeeded again (resolved)",
        run_id=run_id,
        open_with=f"runbooks runs show {run_id}",
    )
