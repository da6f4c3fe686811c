"""``runbooks run``, ``runbooks list``, ``runbooks describe`` (owned by the runner)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from runbooks.cli.options import ArchiveOpt


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def run(
    notebook: Annotated[str, typer.Argument(help="Procedure name (a notebook in notebooks/) or a path to an .ipynb.")],
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Parameter as name=value (repeatable).")
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="Target environment (default: sandbox).", show_default=False)
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds for the whole run, kernel start included.")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who runs it (default: $RUNBOOKS_ACTOR or the login name).")
    ] = None,
    trigger: Annotated[str, typer.Option("--trigger", help="manual or schedule.")] = "manual",
    apply: Annotated[bool, typer.Option("--apply", help="Shorthand for -p apply=true.")] = False,
    confirm: Annotated[
        str | None, typer.Option("--confirm", help="Shorthand for -p confirm=ENV.", show_default=False)
    ] = None,
    archive: ArchiveOpt = None,
    max_cell_output: Annotated[
        int | None,
        typer.Option("--max-cell-output", help="Characters of output a cell keeps (default 1 MiB).", min=1),
    ] = None,
    max_run_output: Annotated[
        int | None,
        typer.Option("--max-run-output", help="Characters of output the run keeps (default 5 MiB).", min=1),
    ] = None,
) -> None:
    """Run a runbook through the audit-grade runner and archive the record.

    Exit codes: 0 succeeded, 1 failed, 2 refused, 3 timed_out, 4 kernel_died, 130 interrupted,
    70 runner error (the run could not be completed or archived), 75 spooled (the archive of record was
    unreachable: the record is in the local spool until `runbooks runs sync`).
    """
    from runbooks.runner.output_cap import OutputCaps
    from runbooks.runner.params import ParamError, split_assignments
    from runbooks.runner.run import OnEnd, refuse_run, run_procedure

    raw = list(param or [])
    if apply:
        raw.append("apply=true")
    if confirm is not None:
        raw.append(f"confirm={confirm}")
    refusal: str | None = None
    try:
        params: dict[str, Any] = split_assignments(raw)
    except ParamError as e:
        params, refusal = {}, str(e)
    environment = env
    if "environment" in params:
        if env is not None and params["environment"] != env:
            refusal = refusal or "-p environment=... contradicts --env; give the environment once"
        environment = environment or params["environment"]
    environment = environment or "sandbox"
    _hold_signals()  # a signal once the run is recorded must not turn its exit code into a kill
    try:
        if refusal is not None:
            outcome = refuse_run(
                notebook,
                refusal,
                params=params,
                environment=environment,
                actor=actor,
                trigger=trigger,
                archive_root=archive,
            )
        else:
            on_end: OnEnd | None = None
            if trigger == "schedule":  # alerts of scheduled runs (docs/SCHEDULES.md)
                from runbooks.schedule.hook import on_scheduled_run_end

                on_end = on_scheduled_run_end
            outcome = run_procedure(
                notebook,
                params=params,
                environment=environment,
                timeout=timeout,
                actor=actor,
                trigger=trigger,
                archive_root=archive,
                progress=sys.stderr.isatty(),
                on_end=on_end,
                output_caps=OutputCaps(
                    per_cell=max_cell_output or OutputCaps.per_cell, per_run=max_run_output or OutputCaps.per_run
                ),
            )
    except Exception:
        # a bug or an archive problem: a scrubbed traceback, never the frames' local variables
        import traceback

        from runbooks.redact import scrub

        _echo_err(scrub(traceback.format_exc()))
        _echo_err("runner error: the run could not be completed or archived; nothing was recorded (exit 70)")
        raise typer.Exit(70) from None
    _ignore_signals()  # recorded: from here to the exit (interpreter shutdown included) the code is the run's
    status = outcome.status.value
    where = outcome.location or (str(outcome.run_dir) if outcome.run_dir else "")
    where = f" -> {where}" if where else ""
    typer.echo(f"{status}: run {outcome.run_id} ({outcome.duration:.1f}s){where}")
    if outcome.spooled:
        _echo_err(
            f"spooled, not archived: the archive of record is unreachable ({outcome.archive_note}); the record "
            f"waits in the local spool and is shipped by `runbooks runs sync` or the next run (exit 75)"
        )
    if outcome.error is not None:
        cell = f" in cell {outcome.error.cell_index}" if outcome.error.cell_index is not None else ""
        _echo_err(f"{outcome.error.kind}{cell}: {outcome.error.message}")
    for note in outcome.notes:  # recorded (the exit code is the run's), but not everything was done
        _echo_err(f"warning: the run is recorded, but {note}")
    raise typer.Exit(outcome.exit_code)


def _hold_signals() -> None:
    """SIGINT/SIGTERM for the rest of this command: the runner defers them while it runs (the run then ends
    ``interrupted``, 130) and hands them back after the commit; here they must not kill the process between
    the record and the exit, whose code is the run's."""
    import signal

    def note(signum: int, frame: object) -> None:
        pass

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, note)


def _ignore_signals() -> None:
    import signal

    # SIG_IGN, not a handler: Python puts its own handlers back to the defaults while it shuts down
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """List the procedures (notebooks in notebooks/): name, title, destructive, schedule."""
    from runbooks.runner.params import NotebookError, load_spec
    from runbooks.runner.run import list_notebooks

    specs, problems = [], []
    for path in list_notebooks():
        try:
            specs.append(load_spec(path))
        except NotebookError as e:
            problems.append(str(e))
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in s.to_dict().items() if k != "parameters"} for s in specs], indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("name", "title", "destructive", "schedule", box=None, pad_edge=False)
        for s in specs:
            table.add_row(s.name, s.title, "yes" if s.destructive else "no", s.schedule or "-")
        console = Console()
        (console if console.is_terminal else Console(width=200)).print(table)
    for p in problems:
        _echo_err(f"warning: {p}")


def describe(
    name: Annotated[str, typer.Argument(help="Procedure name or path to an .ipynb.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Show a procedure: summary, destructive or not, and its parameters (type, default, help, choices)."""
    from runbooks.runner.params import NotebookError, load_spec
    from runbooks.runner.run import resolve_notebook

    try:
        spec = load_spec(resolve_notebook(name))
    except NotebookError as e:
        _echo_err(str(e))
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(spec.to_dict(), indent=1, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console = console if console.is_terminal else Console(width=200)
    console.print(f"[bold]{escape(spec.name)}[/]: {escape(spec.title)}")
    if spec.summary:
        console.print(escape(spec.summary))
    console.print(
        f"destructive: {'yes (needs --apply --confirm ENV; locks the environment)' if spec.destructive else 'no'}"
        f"   schedule: {spec.schedule or '-'}"
    )
    table = Table("parameter", "type", "default", "help", "one of", box=None, pad_edge=False)
    for p in spec.params.values():
        choices = ", ".join(str(c) for c in p.choices) if p.choices else ""
        table.add_row(p.name, p.type, escape(repr(p.default)), escape(p.help), escape(choices))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the run/list/describe commands to ``app``."""
    app.command("run")(run)
    app.command("list")(list_cmd)
    app.command("describe")(describe)
