"""Reading recorded results (``run.json`` ``results``) for people: check tables, other tables, metrics.

A run records what its runbook chose (``runbooks.record``): check results (rows with ``check`` and
``status``), plans and timelines (lists of dicts or dicts), and scalars. This module recognises those shapes
so that ``runs show`` and the audit site present them alike; it never reads anything but the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runbooks.checks.base import STATUSES

#: Trends drawn on a procedure page: (label, unit, how to find the number in a run's results)
METRICS: tuple[tuple[str, str, tuple[tuple[str, ...], ...]], ...] = (
    ("RTO", "s", (("rto_seconds",), ("drill", "rto_seconds"))),
    ("RPO", "s", (("rpo_seconds",), ("drill", "rpo_seconds"))),
    ("backup size", "bytes", (("stored", "size"), ("backup", "size"), ("backup", "size_bytes"))),
)


def table_rows(value: Any) -> list[dict[str, Any]] | None:
    """The rows of a tabular result: a list of dicts, or a DataFrame recorded with a ``data`` list of dicts."""
    rows = value.get("data") if isinstance(value, dict) and "data" in value else value
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        return rows
    return None


def check_rows(value: Any) -> list[dict[str, Any]] | None:
    """The rows of a recorded table of check results (``check`` and ``status`` in every row), else None."""
    rows = table_rows(value)
    if rows is not None and all("check" in r and "status" in r for r in rows):
        return rows
    return None


def status_of(row: dict[str, Any]) -> str:
    """A check row's status, upper case (``PASS``, ``WARN``, ``FAIL``; anything else as written)."""
    return str(row.get("status", "")).upper()


@dataclass(frozen=True)
class CheckOutcome:
    """One check row of one run, keyed for comparison across runs."""

    result: str  #: name of the recorded result holding it
    check: str
    subject: str
    status: str
    evidence: str
    remediation: str

    @property
    def key(self) -> str:
        return f"{self.result}: {self.check} / {self.subject}" if self.subject else f"{self.result}: {self.check}"


def check_outcomes(results: dict[str, Any]) -> Iterator[CheckOutcome]:
    """Every check row of every recorded check table, in recorded order."""
    for name, value in results.items():
        for row in check_rows(value) or []:
            yield CheckOutcome(
                result=name,
                check=str(row.get("check", "")),
                subject="" if row.get("subject") is None else str(row.get("subject")),
                status=status_of(row),
                evidence="" if row.get("evidence") is None else str(row.get("evidence")),
                remediation="" if row.get("remediation") is None else str(row.get("remediation")),
            )


def check_counts(results: dict[str, Any]) -> dict[str, int]:
    """PASS/WARN/FAIL counts over every check row of a run."""
    counts = dict.fromkeys(STATUSES, 0)
    for outcome in check_outcomes(results):
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def metric(results: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> float | None:
    """The first number found at one of ``paths`` in the results (booleans are not numbers)."""
    for path in paths:
        value = _dig(results, path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def metrics(results: dict[str, Any]) -> dict[str, float]:
    """The trend metrics a run recorded (RTO, RPO, backup size), by label."""
    out: dict[str, float] = {}
    for label, _unit, paths in METRICS:
        value = metric(results, paths)
        if value is not None:
            out[label] = value
    return out
