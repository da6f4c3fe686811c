"""``runbooks schedule list|blueprint|run-due|compliance`` (owned by runbooks.schedule)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from runbooks.cli.options import ArchiveOpt, JsonOpt

if TYPE_CHECKING:
    from runbooks.archive.stores import ArchiveStore
    from runbooks.inventory.models import Environment
    from runbooks.schedule.catalogue import Schedule

app = typer.Typer(
    no_args_is_help=True,
    help="Scheduled runs: list the schedules, write the Render cron jobs, run what is due, prove every slot ran.",
)

EnvOpt = Annotated[str, typer.Option("--env", help="Environment (production, staging, sandbox).", show_default=False)]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="The instant to act at (ISO, UTC if no offset; for tests). Default: now."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _fail(f"--now {value!r}: not an ISO date/time; write e.g. 2026-11-30T03:47:00Z") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _schedules(env_name: str) -> tuple[Environment, list[Schedule]]:
    from runbooks.inventory import InventoryError, load
    from runbooks.schedule.catalogue import ScheduleError, resolve

    try:
        env = load(env_name)
        return env, resolve(env)
    except (InventoryError, ScheduleError) as e:
        raise _fail(f"--env {env_name}: {e}") from None


def _archive(archive: str | None, env: str | None = None) -> ArchiveStore:
    """The archive (local directory or the audit bucket): runs, slot claims and alert incidents live there."""
    from runbooks.archive.store import ArchiveError
    from runbooks.archive.stores import open_store

    try:
        return open_store(archive, env)
    except (ArchiveError, ValueError) as e:
        raise _fail(f"--archive: {e}") from None


@app.command("list")
def list_cmd(
    env: Annotated[str, typer.Option("--env", help="Environment (production, staging, sandbox).")] = "production",
    archive: ArchiveOpt = None,
    now: NowOpt = None,
    count: Annotated[int, typer.Option("--next", help="How many next runs to show.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Each scheduled procedure: cron (UTC), enabled, next runs, and its last scheduled run in the archive."""
    from runbooks.schedule import cron
    from runbooks.schedule.catalogue import deployed_drift

    environment, schedules = _schedules(env)
    at = _now(now)
    index = _archive(archive, env).index()
    rows = []
    for s in schedules:
        last = next((r for r in index.query(procedure=s.procedure, environment=env) if r.trigger == "schedule"), None)
        rows.append(
            {
                **s.as_dict(),
                "next_runs": [t.isoformat() for t in cron.next_runs(s.cron, at, count)] if s.enabled else [],
                "last_run": None
                if last is None
                else {"run_id": last.run_id, "status": last.status, "started_at": last.started_at.isoformat()},
            }
        )
    drift = deployed_drift(environment, schedules)
    if as_json:
        typer.echo(json.dumps({"environment": env, "schedules": rows, "cron_jobs_drift": drift}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("procedure", "cron (UTC)", "enabled", "next runs", "last scheduled run", box=None, pad_edge=False)
    for r in rows:
        last = r["last_run"]
        table.add_row(
            r["procedure"] + (" (override)" if r["source"] == "inventory" else ""),
            r["cron"],
            "yes" if r["enabled"] else "no",
            ", ".join(t[:16].replace("T", " ") for t in r["next_runs"]) or "-",
            f"{last['status']} {last['started_at'][:16].replace('T', ' ')} {last['run_id']}" if last else "-",
        )
    console = Console()
    (console if console.is_terminal else Console(width=220)).print(table)
    for d in drift:
        typer.echo(f"warning: cron_jobs drift: {d}", err=True)


@app.command("blueprint")
def blueprint_cmd(
    env: EnvOpt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).", show_default=False)
    ] = None,
) -> None:
    """Write the cron-job part of Render's render.yaml: one cron service per enabled schedule."""
    from runbooks.schedule.blueprint import BlueprintError, render_yaml

    environment, schedules = _schedules(env)
    try:
        text = render_yaml(environment, schedules)
    except BlueprintError as e:
        raise _fail(str(e)) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)


@app.command("run-due")
def run_due_cmd(
    env: EnvOpt,
    archive: ArchiveOpt = None,
    now: NowOpt = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only these procedures (repeatable).", show_default=False)
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds per run.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every procedure whose slot has come and was not run yet (call it every minute from cron/systemd).

    Exit 0 when every run succeeded (or nothing was due), 1 when a run did not succeed or a slot was missed.
    """
    from runbooks.schedule.catalogue import ScheduleError, enabled
    from runbooks.schedule.claims import claims_for
    from runbooks.schedule.due import missed_notifier, run_due

    _, schedules = _schedules(env)
    try:
        chosen = enabled(schedules, only)
    except ScheduleError as e:
        raise _fail(str(e)) from None
    store = _archive(archive, env)
    actions = run_due(
        chosen, _now(now), claims_for(store), archive_root=store, timeout=timeout, on_missed=missed_notifier(store)
    )
    if as_json:
        typer.echo(json.dumps([a.as_dict() for a in actions], indent=1))
    else:
        for a in actions:
            undelivered = [d["channel"] for d in a.alerts if not d.get("delivered")]
            extra = f" (alert not delivered: {', '.join(undelivered)})" if undelivered else ""
            what = f"{a.status}: run {a.run_id}" if a.action == "run" else "missed"
            typer.echo(f"{a.procedure} slot {a.slot}: {what}{extra}")
        if not actions:
            typer.echo("nothing due")
    if any(a.action == "missed" or a.status != "succeeded" for a in actions):
        raise typer.Exit(1)


@app.command("compliance")
def compliance_cmd(
    env: EnvOpt,
    since: Annotated[str, typer.Option("--since", help="Period start: 30d, 24h, 2w or an ISO date.")] = "30d",
    archive: ArchiveOpt = None,
    now: NowOpt = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only these procedures (repeatable).", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every slot of every enabled schedule in the period, matched to the archive: on time, late, failed, missed.

    Exit 1 when any slot was missed or failed."""
    from runbooks.cli.runs import parse_since
    from runbooks.schedule.catalogue import ScheduleError, enabled
    from runbooks.schedule.claims import claims_for
    from runbooks.schedule.compliance import compliant, judge, summarize

    environment, schedules = _schedules(env)
    try:
        chosen = enabled(schedules, only)
    except ScheduleError as e:
        raise _fail(str(e)) from None
    at = _now(now)
    start = parse_since(since, now=at)
    if start >= at:
        raise _fail(f"--since {since}: the period must start before --now ({at.isoformat()})")
    store = _archive(archive, env)
    index = store.index()
    claims = claims_for(store)
    tolerance = timedelta(minutes=environment.schedules.late_tolerance_minutes)
    verdicts = []
    for s in chosen:
        runs = index.query(procedure=s.procedure, environment=env, since=start - timedelta(days=1))
        verdicts += judge(s, start, at, runs, claims, tolerance)
    ok = compliant(verdicts)
    if as_json:
        body = {
            "environment": env,
            "since": start.isoformat(),
            "until": at.isoformat(),
            "compliant": ok,
            "summary": summarize(verdicts),
            "slots": [v.as_dict() for v in verdicts],
        }
        typer.echo(json.dumps(body, indent=1))
    else:
        typer.echo(f"{env}: slots from {start:%Y-%m-%d %H:%M} to {at:%Y-%m-%d %H:%M} UTC")
        for proc, counts in summarize(verdicts).items():
            typer.echo(f"  {proc}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for v in verdicts:
            if v.verdict in ("missed", "failed", "late"):
                run = f" run {v.run_id} ({v.run_status})" if v.run_id else ""
                typer.echo(f"  {v.verdict:<7} {v.procedure} slot {v.slot:%Y-%m-%d %H:%M}{run}")
        typer.echo("compliant" if ok else "NOT compliant: slots were missed or failed")
    if not ok:
        raise typer.Exit(1)
