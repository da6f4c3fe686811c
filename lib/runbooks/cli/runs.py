"""``runbooks runs list|show|verify|reindex`` (owned by the archive)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from runbooks.archive.manifest import RunManifest, RunStatus
from runbooks.archive.store import Archive, ArchiveError
from runbooks.archive.verify import verify as verify_archive
from runbooks.paths import ARCHIVE_ENV

app = typer.Typer(no_args_is_help=True, help="Inspect and verify the audit archive of runs.")

ArchiveOpt = Annotated[
    Path | None,
    typer.Option(
        "--archive", envvar=ARCHIVE_ENV, help="Archive root (default: runs/ of the project).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]

STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMED_OUT: "red",
    RunStatus.KERNEL_DIED: "red",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.REFUSED: "magenta",
}
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``90s``, ``2w`` (ago), or an ISO date/datetime (naive = UTC)."""
    m = _RELATIVE.match(value)
    if m:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use e.g. 7d, 24h, 30m or an ISO date like 2026-11-01") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _console() -> Console:
    """Rich output; when not a terminal (a pipe, a log) use a wide line instead of rich's 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _open(archive_dir: Path | None) -> Archive:
    archive = Archive(archive_dir)
    if not archive.index.exists() and (archive.ledger.path.exists() or any(archive.root.glob("[0-9]" * 4))):
        archive.reindex()  # derived data: rebuild it rather than answer from nothing
    return archive


def _resolve(archive: Archive, prefix: str) -> str:
    try:
        candidates = archive.index.resolve(prefix)
    except (sqlite3.Error, OSError):  # no usable index (e.g. a full disk): the ledger answers
        candidates = []
    if prefix in candidates:
        return prefix
    if not candidates:
        candidates = sorted({e.run_id for e in archive.ledger.entries() if e.run_id.startswith(prefix)})
    if len(candidates) == 1:
        return candidates[0]
    err = Console(stderr=True)
    if not candidates:
        err.print(f"[red]No run matches {prefix!r} in {archive.root}.[/red]")
    else:
        err.print(f"[red]{prefix!r} is ambiguous:[/red] " + ", ".join(candidates))
    raise typer.Exit(1)


def summarise_result(value: Any) -> str:
    """One line for a recorded result: the value if small, else its shape and status counts."""
    rows: list[Any] | None = None
    if isinstance(value, list):
        rows = value
    elif isinstance(value, dict) and isinstance(value.get("data"), list):
        rows = value["data"]  # a DataFrame recorded in "split"/"table" orientation
    if rows is not None:
        statuses = Counter(str(r.get("status")) for r in rows if isinstance(r, dict) and "status" in r)
        counts = ", ".join(f"{k} {n}" for k, n in sorted(statuses.items()))
        return f"{len(rows)} rows" + (f" ({counts})" if counts else "")
    if isinstance(value, dict) and isinstance(value.get("status"), dict):  # DataFrame in "dict" orientation
        statuses = Counter(str(v) for v in value["status"].values())
        return f"{len(value['status'])} rows (" + ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())) + ")"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 100 else f"{type(value).__name__} ({len(text)} chars): {text[:80]}…"


@app.command("list")
def list_runs(
    procedure: Annotated[str | None, typer.Option("--procedure", "-p", help="Only this procedure.")] = None,
    status: Annotated[RunStatus | None, typer.Option("--status", "-s", help="Only runs with this status.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only runs against this environment.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only runs started since: 7d, 24h, 30m or an ISO date.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most N runs, newest first (0: all).")] = 50,
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
) -> None:
    """List archived runs, newest first (answered from the index)."""
    archive = _open(archive_dir)
    rows = archive.index.query(
        procedure=procedure,
        status=str(status) if status else None,
        environment=env,
        since=parse_since(since) if since else None,
        limit=limit or None,
    )
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} run(s) in {archive.root}", title_justify="left")
    for col in ("run id", "procedure", "env", "status", "actor", "trigger", "started (UTC)", "duration"):
        table.add_column(col, overflow="fold", min_width=6)
    for r in rows:
        style = STATUS_STYLE.get(RunStatus(r.status), "")
        table.add_row(
            r.run_id,
            r.procedure,
            r.environment,
            f"[{style}]{r.status}[/{style}]" if style else r.status,
            r.actor,
            r.trigger,
            _stamp(r.started_at),
            format_duration(r.duration_seconds),
        )
    _console().print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of one.")],
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
) -> None:
    """Show one run's manifest, its recorded results summarised, and whether it verifies."""
    archive = _open(archive_dir)
    rid = _resolve(archive, run_id)
    try:
        manifest = archive.read_manifest(rid)
    except (ArchiveError, OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]Cannot read run {rid}: {exc}[/red]")
        raise typer.Exit(1) from None
    run_dir = archive.run_dir(rid)
    if as_json:
        data = json.loads(manifest.model_dump_json())
        data["run_dir"] = str(run_dir)
        typer.echo(json.dumps(data, indent=2))
        return
    _print_manifest(
        _console(), manifest, run_dir, [f"{f.kind}: {f.detail}" for f in verify_archive(archive, rid).findings]
    )


def _print_manifest(console: Console, m: RunManifest, run_dir: Path | None, problems: list[str]) -> None:
    style = STATUS_STYLE.get(m.status, "")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    fields: list[tuple[str, str]] = [
        ("run id", m.run_id),
        ("procedure", m.procedure + (" (destructive)" if m.destructive else "")),
        ("status", f"[{style}]{m.status}[/{style}]" if style else str(m.status)),
        ("environment", m.environment),
        ("actor / trigger", f"{m.actor} / {m.trigger}"),
        ("started / ended", f"{_stamp(m.started_at)} → {_stamp(m.ended_at)} ({format_duration(m.duration_seconds)})"),
        ("host / code", f"{m.host} / {m.code_version}"),
        ("notebook sha256", m.notebook_sha256),
        ("directory", str(run_dir)),
    ]
    if m.error:
        cell = f" at cell {m.error.cell_index}" if m.error.cell_index is not None else ""
        fields.append(("error", f"[red]{m.error.kind}{cell}: {m.error.message}[/red]"))
    if m.lock:
        took = f", took over from {m.lock.took_over_from}" if m.lock.took_over_from else ""
        fields.append(("lock", f"{m.lock.environment} since {_stamp(m.lock.acquired_at)}{took}"))
    fields.append(
        ("integrity", "[green]verified[/green]" if not problems else "[red]" + "; ".join(problems) + "[/red]")
    )
    for k, v in fields:
        head.add_row(k, v)
    console.print(head)
    for title, items in (
        ("parameters (as given)", {k: json.dumps(v, default=str) for k, v in m.parameters.items()}),
        ("recorded results", {k: summarise_result(v) for k, v in m.results.items()}),
        ("files (sha256)", m.files),
    ):
        if items:
            t = Table(title=title, title_justify="left", show_header=False)
            t.add_column(style="bold")
            t.add_column()
            for k, v in items.items():
                t.add_row(k, v)
            console.print(t)


@app.command()
def verify(
    run_id: Annotated[str | None, typer.Argument(help="Only this run (id or unique prefix).")] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="First complete or roll back a commit a crash interrupted.")
    ] = False,
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
) -> None:
    """Recompute every hash and the ledger chain; exit 1 if anything is wrong."""
    console = _console()
    notes: list[str] = []
    try:
        archive = _open(archive_dir)
    except (OSError, sqlite3.Error) as exc:  # e.g. a full disk: verify what is there, without rebuilding the index
        archive = Archive(archive_dir)
        notes.append(f"the missing index could not be rebuilt ({exc}); the index is not checked")
    if repair:
        try:
            done = archive.recover()
        except OSError as exc:
            done = None
            notes.append(f"--repair could not complete or roll back the interrupted commit ({exc}); nothing repaired")
        if done:
            console.print(done)
    rid = _resolve(archive, run_id) if run_id else None
    report = verify_archive(archive, rid)
    report.notes[:0] = notes
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, **report.model_dump(mode="json")}, indent=2))
    else:
        for f in report.findings:
            console.print(f"[red]✗[/red] {f.run_id or '(ledger)'}  [bold]{f.kind}[/bold]  {f.detail}")
        for note in report.notes:
            console.print(f"[yellow]note[/yellow]: {note}")
        verdict = "[green]OK[/green]" if report.ok else f"[red]{len(report.findings)} problem(s)[/red]"
        console.print(f"{verdict}: {report.runs_checked} run(s) checked, {report.ledger_entries} ledger entries")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def reindex(archive_dir: ArchiveOpt = None) -> None:
    """Rebuild the query index from the run manifests alone."""
    archive = Archive(archive_dir)
    n = archive.reindex()
    _console().print(f"Indexed {n} run(s) into {archive.index.path}")
