"""The site's pages as HTML strings (Jinja templates in ``templates/``), from summaries and manifests.

Pure functions of their inputs: the build decides what to render and where to write it. Every value from
the archive goes through Jinja's autoescaping; only the notebook HTML and our own SVG are inserted as is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.manifest import RunManifest, RunStatus
from runbooks.audit.catalog import EXPORT_FIELDS, Listed, RunSummary
from runbooks.audit.charts import Mark, Point, status_strip, trend
from runbooks.audit.compliance import Compliance
from runbooks.audit.diff import FindingsDiff, diff_findings
from runbooks.audit.results import METRICS, STATUSES, check_counts, check_outcomes, check_rows, table_rows
from runbooks.runner.run import EXIT_CODES

HERE = Path(__file__).resolve().parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"
#: runs drawn on a procedure page's strips (the latest ones); older runs stay in the list and their pages
STRIP_RUNS = 150
LATEST_RUNS = 20
MAX_CHANGES = 50
#: one letter per check status in the compare data of a procedure page (assets/compare.js reads it)
COMPARE_CODE = {"PASS": "P", "WARN": "W", "FAIL": "F"}
RUN_STATUS_FILL = {"succeeded": "PASS", "failed": "FAIL", "timed_out": "FAIL", "kernel_died": "FAIL"}


def slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-") or "x"


def stamp(value: datetime | str) -> str:
    return _stamp(value.isoformat() if isinstance(value, datetime) else value)


@functools.lru_cache(maxsize=65536)
def _stamp(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def environment(cache: bool = False) -> jinja2.Environment:
    """The templates' environment. ``cache``: keep compiled templates between builds in Jinja's per-user
    cache directory (private to the user, checked by Jinja; never in OUT, where others may write)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=jinja2.FileSystemBytecodeCache() if cache else None,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters.update(slug=slug, stamp=stamp, duration=duration)
    return env


def site_version() -> str:
    """Digest of the templates and assets: a change of either re-renders every page."""
    h = hashlib.sha256()
    for p in sorted([*TEMPLATES.glob("*.j2"), *STATIC.glob("*"), *HERE.glob("*.py")]):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def static_assets() -> dict[str, bytes]:
    """``assets/`` files: our CSS (with Pygments' highlighting rules) and scripts."""
    out = {f"assets/{p.name}": p.read_bytes() for p in STATIC.iterdir() if p.is_file()}
    css = HtmlFormatter(style="default").get_style_defs(".highlight").encode()
    out["assets/site.css"] = out.get("assets/site.css", b"") + b"\n/* Pygments */\n" + css + b"\n"
    return out


@dataclass(frozen=True)
class Verdict:
    """The verify verdict shown as a banner."""

    ok: bool
    at: str
    entries: int
    head: str | None
    findings: list[dict[str, Any]]
    full: bool
    rehashed: int

    def script(self) -> str:
        """``data/verify.js``: the verdict for the run pages' banner (run pages are not rebuilt for it)."""
        by_run: dict[str, list[str]] = {}
        for f in self.findings:
            if f.get("run_id"):
                by_run.setdefault(str(f["run_id"]), []).append(f"{f['kind']}: {f['detail']}")
        data = {
            "ok": self.ok,
            "at": self.at,
            "entries": self.entries,
            "count": len(self.findings),
            "rehashed": self.rehashed,
            "full": self.full,
            "runs": by_run,
        }
        return "window.AUDIT_VERIFY = " + _js_json(data) + ";\n"


def _js_json(data: Any) -> str:
    """JSON safe inside a script file (no ``</script>``, no U+2028)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@dataclass
class Common:
    """What every page's layout needs."""

    procedures: list[str]
    verdict: Verdict
    location_name: str
    has_compliance: bool

    def ctx(self, root: str) -> dict[str, Any]:
        return {
            "root": root,
            "procedures": self.procedures,
            "verdict": self.verdict,
            "location_name": self.location_name,
            "has_compliance": self.has_compliance,
        }


# -- index --------------------------------------------------------------------------------------------
def runs_data(runs: list[RunSummary]) -> str:
    """``data/runs.js``: every run, newest first, as rows of EXPORT_FIELDS + extra display columns."""
    ordered = sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)
    return runs_script([run_row(r) for r in ordered])


def run_row(r: RunSummary) -> str:
    """One run's row of ``data/runs.js`` (the build keeps it, so a rebuild joins rows instead of encoding them)."""
    row = [r.row[f] for f in EXPORT_FIELDS]
    row += [r.error_message, r.counts.get("PASS", 0), r.counts.get("WARN", 0), r.counts.get("FAIL", 0)]
    return _js_json(row)


def runs_script(rows: list[str]) -> str:
    """``data/runs.js`` from rows of :func:`run_row`, in the order given (newest first)."""
    head = _js_json({"fields": list(EXPORT_FIELDS), "extra": ["error_message", "pass", "warn", "fail"]})
    return "window.AUDIT_RUNS = " + head[:-1] + ',"rows":[' + ",".join(rows) + "]};\n"


def index_page(env: jinja2.Environment, common: Common, runs: list[Listed], data_version: str) -> str:
    def values(field: str) -> list[str]:
        return sorted({str(getattr(r, field)) for r in runs})

    present = {r.status for r in runs}
    statuses = [s.value for s in RunStatus if s.value in present]
    selects = [
        ("procedure", "procedure", values("procedure")),
        ("environment", "environment", values("environment")),
        ("status", "status", statuses),
        ("actor", "actor", values("actor")),
        ("trigger", "trigger", values("trigger")),
    ]
    return env.get_template("index.html.j2").render(
        **common.ctx(""), total=len(runs), selects=selects, data_version=data_version
    )


# -- run page -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Neighbour:
    run_id: str
    started: str
    status: str


def neighbour(r: RunSummary | None) -> Neighbour | None:
    return Neighbour(r.run_id, stamp(r.started_iso), r.status) if r else None


def result_views(results: dict[str, Any]) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    for name, value in results.items():
        checks = check_rows(value)
        if checks is not None:
            rows = [
                {
                    "check": r.get("check", ""),
                    "subject": r.get("subject") or "",
                    "status": str(r.get("status", "")).upper(),
                    "evidence": r.get("evidence") or "",
                    "remediation": r.get("remediation") or "",
                }
                for r in checks
            ]
            views.append({"name": name, "kind": "checks", "rows": rows, "counts": check_counts({name: value})})
            continue
        rows_ = table_rows(value)
        if rows_ is not None:
            columns: list[str] = []
            for r in rows_:
                columns.extend(k for k in r if k not in columns)
            views.append({"name": name, "kind": "table", "rows": rows_, "columns": columns})
        elif isinstance(value, dict):
            views.append({"name": name, "kind": "mapping", "value": value})
        else:
            views.append({"name": name, "kind": "scalar", "value": value})
    return views


def run_page(
    env: jinja2.Environment,
    common: Common,
    *,
    entry: LedgerEntry,
    manifest: RunManifest,
    prev: RunSummary | None,
    next_: RunSummary | None,
    notebook_html: str | None,
    notebook_note: str,
) -> str:
    diff: FindingsDiff | None = None
    if prev is not None:
        outcomes = {o.key: o for o in check_outcomes(manifest.results)}
        diff = diff_findings(prev.checks, {k: o.status for k, o in outcomes.items()}, outcomes)
    return env.get_template("run.html.j2").render(
        **common.ctx("../"),
        m=manifest,
        exit_code=EXIT_CODES.get(manifest.status, ""),
        entry=entry,
        prev=neighbour(prev),
        next=neighbour(next_),
        diff=diff,
        results=result_views(manifest.results),
        notebook_html=notebook_html,
        notebook_note=notebook_note,
    )


# -- procedure page -----------------------------------------------------------------------------------
def _env_section(procedure: str, name: str, runs: list[RunSummary]) -> dict[str, Any]:
    """One environment of a procedure page; ``runs`` oldest first."""
    recent = runs[-STRIP_RUNS:]

    def href(r: RunSummary) -> str:
        return f"../runs/{r.run_id}.html"

    strip = status_strip(
        [
            Mark(r.run_id, href(r), RUN_STATUS_FILL.get(r.status, ""), f"{stamp(r.started_iso)} {r.status} {r.run_id}")
            for r in recent
        ],
        caption=f"status of the last {len(recent)} runs",
    )
    keys: list[str] = []
    for r in recent:
        keys.extend(k for k in r.checks if k not in keys)
    checks = []
    for key in keys:
        marks = [
            Mark(r.run_id, href(r), r.checks.get(key, ""), f"{stamp(r.started_iso)} {r.checks.get(key, 'absent')}")
            for r in recent
        ]
        checks.append({"key": key, "latest": recent[-1].checks.get(key, ""), "strip": status_strip(marks, caption=key)})
    metric_charts = []
    for label, unit, _paths in METRICS:
        points = [
            Point(r.run_id, href(r), stamp(r.started_iso)[:10], r.metrics[label]) for r in recent if label in r.metrics
        ]
        if points:
            metric_charts.append((label, trend(points, caption=label, unit=unit)))
    durations = [Point(r.run_id, href(r), stamp(r.started_iso)[:10], float(r.row["duration_seconds"])) for r in recent]
    changes = []
    for i in range(len(runs) - 1, 0, -1):  # newest first, the last MAX_CHANGES changes
        before, after = runs[i - 1], runs[i]
        if before.checks == after.checks:
            continue
        d = diff_findings(before.checks, after.checks)
        if not d.empty:
            changes.append(
                {
                    "run_id": after.run_id,
                    "started": stamp(after.started_iso),
                    "base_id": before.run_id,
                    "base_started": stamp(before.started_iso),
                    "diff": d,
                }
            )
            if len(changes) == MAX_CHANGES:
                break
    compare = {
        "keys": keys,
        "runs": [
            {
                "id": r.run_id,
                "t": stamp(r.started_iso),
                "s": "".join(COMPARE_CODE.get(r.checks.get(k, ""), "-") for k in keys),
            }
            for r in recent
        ],
    }
    counts = Counter(r.status for r in runs)
    return {
        "compare_json": _js_json(compare) if keys and len(recent) > 1 else "",
        "name": name,
        "total": len(runs),
        "counts": {s.value: counts.get(s.value, 0) for s in RunStatus},
        "strip_runs": len(recent),
        "runs_strip": strip,
        "duration_chart": trend(durations, caption="duration", unit="s"),
        "metric_charts": metric_charts,
        "checks": checks,
        "changes": changes,
        "latest": [
            {
                "run_id": r.run_id,
                "started": stamp(r.started_iso),
                "status": r.status,
                "actor": r.row["actor"],
                "trigger": r.row["trigger"],
                "duration": duration(float(r.row["duration_seconds"])),
                "error": r.error_message,
            }
            for r in reversed(runs[-LATEST_RUNS:])
        ],
    }


def procedure_page(env: jinja2.Environment, common: Common, procedure: str, series: dict[str, list[RunSummary]]) -> str:
    envs = [_env_section(procedure, name, runs) for name, runs in sorted(series.items())]
    return env.get_template("procedure.html.j2").render(**common.ctx("../"), procedure=procedure, envs=envs)


# -- compliance ---------------------------------------------------------------------------------------
SLOT_FILL = {"ran": "PASS", "late": "WARN", "failed": "FAIL", "missed": "MISSED"}


def compliance_page(env: jinja2.Environment, common: Common, compliance: Compliance, known: set[str]) -> str:
    schedules = []
    for s in compliance.schedules:
        slots = sorted(s.slots, key=lambda x: x.due)
        marks = [
            Mark(
                sl.run_id or "",
                f"runs/{sl.run_id}.html" if sl.run_id in known else "#",
                SLOT_FILL[sl.status.value],
                f"{stamp(sl.due)} {sl.status.value} {sl.run_id or ''} {sl.detail}".strip(),
            )
            for sl in slots
        ]
        problems = [
            {
                "due": sl.due,
                "status": sl.status.value,
                "run_id": sl.run_id,
                "href": f"runs/{sl.run_id}.html" if sl.run_id in known else None,
                "detail": sl.detail,
            }
            for sl in reversed(slots)
            if sl.status.value != "ran"
        ]
        schedules.append(
            {
                "procedure": s.procedure,
                "environment": s.environment,
                "cron": s.cron,
                "counts": s.counts(),
                "strip": status_strip(marks, caption=f"{s.procedure} on {s.environment}"),
                "problems": problems,
            }
        )
    return env.get_template("compliance.html.j2").render(**common.ctx(""), compliance=compliance, schedules=schedules)


__all__ = ["STATUSES", "Common", "Verdict", "compliance_page", "index_page", "procedure_page", "run_page"]
