"""What the site knows of each run without re-reading it: one small summary per run.

A :class:`RunSummary` holds the run's index row (the same fields as ``runbooks runs list --json``) and
what the index and procedure pages draw (check statuses, metrics, the error message). The build keeps the
summaries in its state file keyed by the run's ledger entry hash, so a rebuild reads only new runs.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from runbooks.archive.index import IndexedRun
from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.manifest import RunManifest
from runbooks.audit.results import check_counts, check_outcomes, metrics

#: fields of an exported row, in order: exactly those of ``runbooks runs list --json``
EXPORT_FIELDS = tuple(IndexedRun.model_fields)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Plain data (a dataclass, not a model): the build holds 10,000 of them and reloads them from its state."""

    entry_hash: str  #: the ledger entry it was read for (a changed entry means re-read)
    seq: int
    row: dict[str, Any]  #: ``runs list --json`` row
    error_message: str = ""
    error_cell: int | None = None
    checks: dict[str, str] = field(default_factory=dict)  #: check key -> status
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def run_id(self) -> str:
        return str(self.row["run_id"])

    @property
    def procedure(self) -> str:
        return str(self.row["procedure"])

    @property
    def environment(self) -> str:
        return str(self.row["environment"])

    @property
    def status(self) -> str:
        return str(self.row["status"])

    @property
    def actor(self) -> str:
        return str(self.row["actor"])

    @property
    def trigger(self) -> str:
        return str(self.row["trigger"])

    @property
    def started_at(self) -> datetime:
        return parse_time(str(self.row["started_at"]))

    @property
    def started_iso(self) -> str:
        return str(self.row["started_at"])


@functools.lru_cache(maxsize=65536)
def parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def summarise(entry: LedgerEntry, m: RunManifest) -> RunSummary:
    row = IndexedRun(
        run_id=m.run_id,
        procedure=m.procedure,
        environment=m.environment,
        status=str(m.status),
        actor=m.actor,
        trigger=m.trigger,
        started_at=m.started_at,
        ended_at=m.ended_at,
        duration_seconds=m.duration_seconds,
        destructive=m.destructive,
        error_kind=m.error.kind if m.error else None,
        path=entry.path,
        manifest_sha256=entry.manifest_sha256,
    ).model_dump(mode="json")
    return RunSummary(
        entry_hash=entry.hash,
        seq=entry.seq,
        row=row,
        error_message=m.error.message if m.error else "",
        error_cell=m.error.cell_index if m.error else None,
        checks={o.key: o.status for o in check_outcomes(m.results)},
        counts=check_counts(m.results),
        metrics=metrics(m.results),
    )


class Listed(Protocol):
    """What ordering and the index page need of a run (a summary, or the build state's record of one)."""

    @property
    def run_id(self) -> str: ...
    @property
    def procedure(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...


R = TypeVar("R", bound=Listed)


def by_series(runs: list[R]) -> dict[tuple[str, str], list[R]]:
    """Runs grouped by (procedure, environment), each group oldest first."""
    groups: dict[tuple[str, str], list[R]] = defaultdict(list)
    for r in runs:
        groups[(r.procedure, r.environment)].append(r)
    for group in groups.values():
        group.sort(key=lambda r: (r.started_at, r.run_id))
    return dict(groups)
