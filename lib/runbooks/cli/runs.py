"""``runbooks runs list|show|verify|reindex|sync|pull`` (owned by the archive), on any archive store."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runbooks.archive.manifest import RunManifest, RunStatus
from runbooks.archive.store import ArchiveError
from runbooks.archive.stores import ArchiveStore, LocalStore, open_store
from runbooks.audit.results import check_rows
from runbooks.checks.base import CHECK_COLUMNS
from runbooks.cli.options import ArchiveOpt, JsonOpt

app = typer.Typer(no_args_is_help=True, help="Inspect and verify the audit archive of runs.")

EnvOpt = Annotated[
    str | None,
    typer.Option("--inventory", help="Environment whose inventory gives an s3:// archive its endpoint and credential."),
]

STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMED_OUT: "red",
    RunStatus.KERNEL_DIED: "red",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.REFUSED: "magenta",
}
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
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


def parse_until(value: str, now: datetime | None = None) -> datetime:
    """The end of a ``--until`` window (exclusive): as :func:`parse_since`, but a bare date (``2026-11-30``)
    means through the end of that day, so the runs started on it are included."""
    end = parse_since(value, now)
    if _DATE_ONLY.match(value):
        end += timedelta(days=1)
    return end


def _window(option: str, value: str | None, parse: Callable[[str], datetime]) -> datetime | None:
    """A time-window option parsed, or a usage error naming the option."""
    if not value:
        return None
    try:
        return parse(value)
    except typer.BadParameter as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


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


def _open(archive: str | None, env: str | None = None) -> ArchiveStore:
    try:
        return open_store(archive, env)
    except (ArchiveError, ValueError) as exc:
        Console(stderr=True).print(Text(f"--archive: {exc}", style="red"))
        raise typer.Exit(2) from None


def _resolve(store: ArchiveStore, prefix: str) -> str:
    try:
        candidates = store.index().resolve(prefix)
    except (sqlite3.Error, OSError):  # no usable index (e.g. a full disk): the ledger answers
        candidates = []
    if prefix in candidates:
        return prefix
    if not candidates:
        candidates = sorted({e.run_id for e in store.entries() if e.run_id.startswith(prefix)})
    if len(candidates) == 1:
        return candidates[0]
    err = Console(stderr=True)
    if not candidates:
        err.print(Text(f"No run matches {prefix!r} in {store.url}.", style="red"))
    else:
        err.print(Text.assemble((f"{prefix!r} is ambiguous: ", "red"), ", ".join(candidates)))
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
    actor: Annotated[str | None, typer.Option("--actor", "-a", help="Only runs by this actor.")] = None,
    trigger: Annotated[
        str | None, typer.Option("--trigger", "-t", help="Only runs with this trigger: manual or schedule.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only runs started since: 7d, 24h, 30m or an ISO date.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only runs started before: 7d, 24h or an ISO date/time (a date: up to its end)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most N runs, newest first (0: all).")] = 50,
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
    inventory_env: EnvOpt = None,
) -> None:
    """List archived runs, newest first (answered from the index)."""
    store = _open(archive_dir, inventory_env)
    rows = store.index().query(
        procedure=procedure,
        status=str(status) if status else None,
        environment=env,
        actor=actor,
        trigger=trigger,
        since=_window("--since", since, parse_since),
        until=_window("--until", until, parse_until),
        limit=limit or None,
    )
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} run(s) in {store.url}", title_justify="left")
    for col in ("run id", "procedure", "env", "status", "actor", "trigger", "started (UTC)", "duration"):
        table.add_column(col, overflow="fold", min_width=6)
    for r in rows:  # Text cells: printed literally, never read as Rich markup
        table.add_row(
            Text(r.run_id),
            Text(r.procedure),
            Text(r.environment),
            _status_text(r.status),
            Text(r.actor),
            Text(r.trigger),
            Text(_stamp(r.started_at)),
            Text(format_duration(r.duration_seconds)),
        )
    _console().print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of one.")],
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
    inventory_env: EnvOpt = None,
) -> None:
    """Show one run's manifest, its recorded results summarised, and whether it verifies."""
    store = _open(archive_dir, inventory_env)
    rid = _resolve(store, run_id)
    try:
        manifest = store.read_manifest(rid)
    except (ArchiveError, OSError, ValueError) as exc:
        Console(stderr=True).print(Text(f"Cannot read run {rid}: {exc}", style="red"))
        raise typer.Exit(1) from None
    where = store.location_of(rid)
    if as_json:
        data = json.loads(manifest.model_dump_json())
        data["run_dir"] = where
        typer.echo(json.dumps(data, indent=2))
        return
    _print_manifest(_console(), manifest, where, [f"{f.kind}: {f.detail}" for f in store.verify(rid).findings])


def _status_text(status: str) -> Text:
    try:
        style = STATUS_STYLE.get(RunStatus(status), "")
    except ValueError:
        style = ""
    return Text(status, style=style)


CHECK_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}


def _param_text(value: Any) -> str:
    """A parameter as given: strings as they are (``[not recorded]`` included), anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _print_manifest(console: Console, m: RunManifest, run_dir: str | None, problems: list[str]) -> None:
    """Every value is a :class:`Text`, so the record is printed literally (``[app.runspectral.com]`` stays)."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    fields: list[tuple[str, Text]] = [
        ("run id", Text(m.run_id)),
        ("procedure", Text(m.procedure + (" (destructive)" if m.destructive else ""))),
        ("status", _status_text(str(m.status))),
        ("environment", Text(m.environment)),
        ("actor / trigger", Text(f"{m.actor} / {m.trigger}")),
        (
            "started / ended",
            Text(f"{_stamp(m.started_at)} → {_stamp(m.ended_at)} ({format_duration(m.duration_seconds)})"),
        ),
        ("host / code", Text(f"{m.host} / {m.code_version}")),
        ("notebook sha256", Text(m.notebook_sha256)),
        ("location", Text(str(run_dir))),
    ]
    if m.error:
        cell = f" at cell {m.error.cell_index}" if m.error.cell_index is not None else ""
        fields.append(("error", Text(f"{m.error.kind}{cell}: {m.error.message}", style="red")))
    if m.lock:
        took = f", took over from {m.lock.took_over_from}" if m.lock.took_over_from else ""
        fields.append(("lock", Text(f"{m.lock.environment} since {_stamp(m.lock.acquired_at)}{took}")))
    integrity = Text("verified", style="green") if not problems else Text("; ".join(problems), style="red")
    fields.append(("integrity", integrity))
    for k, v in fields:
        head.add_row(k, v)
    console.print(head)
    checks = {k: rows for k, v in m.results.items() if (rows := check_rows(v)) is not None}
    for title, items in (
        ("parameters (as given)", {k: _param_text(v) for k, v in m.parameters.items()}),
        ("recorded results", {k: summarise_result(v) for k, v in m.results.items()}),
        ("files (sha256)", m.files),
    ):
        if items:
            t = Table(title=title, title_justify="left", show_header=False)
            t.add_column(style="bold")
            t.add_column()
            for key, text in items.items():
                t.add_row(Text(key), Text(text))
            console.print(t)
    for name, rows in checks.items():
        console.print(_check_table(name, rows))


def _check_table(name: str, rows: list[dict[str, Any]]) -> Table:
    t = Table(title=f"{name}: check rows", title_justify="left")
    for col in CHECK_COLUMNS:
        t.add_column(col, overflow="fold")
    for r in rows:
        status = str(r.get("status", ""))
        cells = [Text("" if r.get(c) is None else str(r.get(c))) for c in CHECK_COLUMNS]
        cells[2] = Text(status, style=CHECK_STYLE.get(status.upper(), ""))
        t.add_row(*cells)
    return t


@app.command()
def verify(
    run_id: Annotated[str | None, typer.Argument(help="Only this run (id or unique prefix).")] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="First complete or roll back a commit a crash interrupted.")
    ] = False,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Also compare this (local) archive's ledger with the anchor archive (s3://BUCKET/PREFIX): "
            "a cut tail or a rewritten record in the local copy is found.",
        ),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="S3: re-read every object, also those an earlier verification sealed."),
    ] = False,
    as_json: JsonOpt = False,
    archive_dir: ArchiveOpt = None,
    inventory_env: EnvOpt = None,
) -> None:
    """Recompute every hash and the ledger chain; exit 1 if anything is wrong."""
    console = _console()
    notes: list[str] = []
    store = _open(archive_dir, inventory_env)
    if repair:
        try:
            done = store.recover()
        except OSError as exc:
            done = None
            notes.append(f"--repair could not complete or roll back the interrupted commit ({exc}); nothing repaired")
        if done:
            console.print(Text(done))
    rid = _resolve(store, run_id) if run_id else None
    report = store.verify(rid, deep=deep)
    report.notes[:0] = notes
    if against:
        from runbooks.archive.s3verify import compare_with_anchor

        report.findings.extend(compare_with_anchor(store, _open(against, inventory_env)))
    pending = _pending(store)
    if pending and not as_json:
        console.print(
            Text(f"{pending} run(s) spooled locally, not yet in {store.url}: `runbooks runs sync`", style="yellow")
        )
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, **report.model_dump(mode="json")}, indent=2))
    else:
        for f in report.findings:
            console.print(
                Text.assemble(("✗ ", "red"), f"{f.run_id or '(ledger)'}  ", (str(f.kind), "bold"), f"  {f.detail}")
            )
        for note in report.notes:
            console.print(Text.assemble(("note", "yellow"), f": {note}"))
        verdict = Text("OK", style="green") if report.ok else Text(f"{len(report.findings)} problem(s)", style="red")
        console.print(
            Text.assemble(verdict, f": {report.runs_checked} run(s) checked, {report.ledger_entries} ledger entries")
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def reindex(archive_dir: ArchiveOpt = None, inventory_env: EnvOpt = None) -> None:
    """Rebuild the query index from the run manifests alone."""
    store = _open(archive_dir, inventory_env)
    n = store.reindex()
    _console().print(Text(f"Indexed {n} run(s) of {store.url}"))


def _pending(store: ArchiveStore) -> int:
    from runbooks.archive.s3store import S3Store

    return len(store.pending()) if isinstance(store, S3Store) else 0


@app.command()
def sync(archive_dir: ArchiveOpt = None, inventory_env: EnvOpt = None) -> None:
    """Ship the runs spooled while the archive of record was unreachable (in order); exit 75 if it still is."""
    from runbooks.archive.objects import StoreUnavailable

    store = _open(archive_dir, inventory_env)
    try:
        shipped = store.sync()
    except StoreUnavailable as exc:
        Console(stderr=True).print(
            Text(f"still unreachable, nothing shipped beyond what is listed: {exc}", style="red")
        )
        raise typer.Exit(75) from None
    for rid in shipped:
        _console().print(Text(f"shipped {rid}"))
    _console().print(Text(f"{len(shipped)} spooled run(s) shipped to {store.url}"))


@app.command()
def pull(
    source: Annotated[str, typer.Option("--from", help="The archive to copy from (s3://BUCKET/PREFIX).")],
    archive_dir: ArchiveOpt = None,
    inventory_env: EnvOpt = None,
) -> None:
    """Copy the runs of an archive (the bucket) into a local one, entry for entry (same ledger)."""
    from runbooks.archive.s3verify import mirror

    local = _open(archive_dir, inventory_env)
    if not isinstance(local, LocalStore):
        Console(stderr=True).print(Text("--archive: pull copies into a local directory", style="red"))
        raise typer.Exit(2)
    copied = mirror(_open(source, inventory_env), local.archive)
    _console().print(Text(f"copied {len(copied)} run(s) from {source} into {local.url}"))
