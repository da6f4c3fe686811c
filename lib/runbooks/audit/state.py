"""The build state kept in ``OUT``, so that a rebuild reads and writes in proportion to what changed.

Three files, each read by the one process that needs it:

- ``.audit-site.json`` (small; its presence marks ``OUT`` as a site): the site version and the digests of
  the pages that are not run pages (procedure pages, index, data, assets);
- ``.audit-runs.jsonl``: one line per run, ``<light JSON>\\t<summary JSON>\\t<its data/runs.js row>``. The light
  part (run id, entry hash, procedure, environment, start, status, actor, trigger, run page digest) is
  all a rebuild needs of an unchanged run: the full :class:`~runbooks.audit.catalog.RunSummary` (check
  statuses, metrics) is parsed only for the runs drawn again (a procedure page whose runs changed, the
  neighbours of a new run), and the row of ``data/runs.js`` is kept as written, so ``data/runs.js`` is
  joined, not re-encoded;
- ``.audit-verify.json``: the verification checkpoint (:mod:`runbooks.audit.verifier`), read and written
  through the verifying process.

A state written by another site version is ignored (everything is rebuilt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runbooks.audit.catalog import RunSummary, parse_time

STATE_NAME = ".audit-site.json"
RUNS_NAME = ".audit-runs.jsonl"


@dataclass(slots=True)
class RunRecord:
    """One run as the state keeps it: what ordering, neighbours, the index and digests need, and the rest as text."""

    run_id: str
    entry_hash: str
    seq: int
    procedure: str
    environment: str
    started_iso: str
    status: str
    actor: str
    trigger: str
    page: str  #: digest of the inputs its run page was last rendered from ("" = not rendered)
    summary_json: str
    js_row: str  #: its row of data/runs.js, as written there
    _summary: RunSummary | None = field(default=None, repr=False, compare=False)
    _line: str = field(default="", repr=False, compare=False)  #: the state line as loaded (written back if unchanged)

    @classmethod
    def of(cls, summary: RunSummary, js_row: str) -> RunRecord:
        row = summary.row
        return cls(
            summary.run_id,
            summary.entry_hash,
            summary.seq,
            summary.procedure,
            summary.environment,
            summary.started_iso,
            summary.status,
            str(row["actor"]),
            str(row["trigger"]),
            "",
            json.dumps(summary.as_dict(), separators=(",", ":"), ensure_ascii=False),
            js_row,
            summary,
        )

    @property
    def started_at(self) -> datetime:
        return parse_time(self.started_iso)

    @property
    def summary(self) -> RunSummary:
        if self._summary is None:
            self._summary = RunSummary(**json.loads(self.summary_json))
        return self._summary

    def set_page(self, digest: str) -> None:
        if digest != self.page:
            self.page, self._line = digest, ""

    def line(self) -> str:
        if not self._line:
            light = json.dumps(self._light(), separators=(",", ":"), ensure_ascii=False)
            self._line = f"{light}\t{self.summary_json}\t{self.js_row}"
        return self._line

    def _light(self) -> list[Any]:
        return [
            self.run_id,
            self.entry_hash,
            self.seq,
            self.procedure,
            self.environment,
            self.started_iso,
            self.status,
            self.actor,
            self.trigger,
            self.page,
        ]


@dataclass
class SiteState:
    version: str
    pages: dict[str, str]  #: file (relative to OUT) -> digest of its inputs ("" = compared by bytes)
    runs: dict[str, RunRecord]  #: by run id


def load(out: Path, version: str) -> SiteState:
    """The state of an earlier build in ``out`` (empty when there is none, or of another version)."""
    try:
        meta = json.loads((out / STATE_NAME).read_bytes())
    except (OSError, ValueError):
        return SiteState(version, {}, {})
    if not isinstance(meta, dict) or meta.get("version") != version or not isinstance(meta.get("pages"), dict):
        pages = meta.get("pages") if isinstance(meta, dict) else None
        return SiteState(version, dict(pages) if isinstance(pages, dict) else {}, {})
    return SiteState(version, meta["pages"], _load_runs(out / RUNS_NAME, version))


def _load_runs(path: Path, version: str) -> dict[str, RunRecord]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    header, _, body = text.partition("\n")
    parts = [line.split("\t") for line in body.split("\n") if line]
    try:
        if json.loads(header) != {"version": version} or any(len(p) != 3 for p in parts):
            return {}
        lights = json.loads("[" + ",".join(p[0] for p in parts) + "]")
        records = [_record(light, p) for light, p in zip(lights, parts, strict=True)]
    except (ValueError, TypeError):
        return {}
    return {r.run_id: r for r in records}


def _record(light: list[Any], parts: list[str]) -> RunRecord:
    if not isinstance(light, list) or len(light) != 10:
        raise ValueError("not a run record")
    rid, entry_hash, seq, procedure, environment, started, status, actor, trigger, page = light
    record = RunRecord(
        rid, entry_hash, seq, procedure, environment, started, status, actor, trigger, page, parts[1], parts[2]
    )
    record._line = "\t".join(parts)
    return record


def save(out: Path, state: SiteState, write: Any) -> None:
    """Write the state with ``write(path, bytes)`` (atomic): the runs first, then the marker file."""
    lines = [json.dumps({"version": state.version})]
    lines.extend(r.line() for r in state.runs.values())
    write(out / RUNS_NAME, ("\n".join(lines) + "\n").encode())
    write(out / STATE_NAME, json.dumps({"version": state.version, "pages": state.pages}).encode())
