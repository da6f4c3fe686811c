"""``runbooks sandbox up|down|status|reset``: drive the local twin of Spectral's hosting."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer import _click  # typer vendors click: TyperCommand's hooks take its types, not click's
from typer.core import TyperCommand

from runbooks.sandbox import faults as fault_catalogue

app = typer.Typer(no_args_is_help=True, help="Drive the local twin of Spectral's hosting.")
console = Console()
err = Console(stderr=True)

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root", help="State directory of the twin (default: .sandbox/ of the project, or $RUNBOOKS_SANDBOX)."
    ),
]

_UP_HELP = """Bring the twin up (idempotent): start every component on loopback, wait until each is
healthy, provision it, and write state.json and endpoints.json under the root.
"""


class _UpCommand(TyperCommand):
    """``up --help`` lists the fault catalogue, computed only when help is shown (it imports every component)."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self.help = (
            _UP_HELP
            + "\n\b\nFaults (--fault NAME, repeatable) build the twin wrong on purpose:\n"
            + fault_catalogue.help_text()
        )
        super().format_help(ctx, formatter)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C for the duration, so that cleanup (bringing the twin down) runs."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(name: str, message: str) -> None:
    err.print(f"[dim]{name:>10}[/dim]  {message}")


def _print_components(report: dict) -> None:
    table = Table(title=f"sandbox at {report['root']}: {report['status']}")
    for col in ("component", "address", "health", "pids", "detail"):
        table.add_column(col)
    for name, c in report["components"].items():
        healthy = "[green]healthy[/green]" if c.get("healthy") else "[red]unhealthy[/red]"
        table.add_row(
            name, str(c.get("address", "")), healthy, ",".join(map(str, c.get("pids", []))), str(c.get("detail", ""))
        )
    console.print(table)
    if report.get("faults"):
        console.print(f"faults: {', '.join(report['faults'])}")


@app.command(help=_UP_HELP, cls=_UpCommand)
def up(
    root: RootOpt = None,
    scale: Annotated[int, typer.Option("--scale", min=1, help="Multiply the seeded data by N.")] = 1,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Build the twin with this fault (repeatable; see the list above)."),
    ] = None,
    component: Annotated[
        list[str] | None,
        typer.Option("--component", help="Only this component and its dependencies (repeatable; default: all)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds each component may take to become healthy.")
    ] = None,
) -> None:
    from runbooks.sandbox import lifecycle

    t0 = time.monotonic()
    try:
        with sigterm_as_interrupt():
            states = lifecycle.up(
                root, scale=scale, faults=fault or [], components=component, timeout=timeout, report=_report
            )
    except (lifecycle.SandboxError, fault_catalogue.UnknownFault, lifecycle.RegistryError) as e:
        err.print(f"[red]sandbox up failed:[/red] {e}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: whatever had started was stopped again[/yellow]")
        raise typer.Exit(130) from None
    for name, s in states.items():
        console.print(f"{name:>10}  {s.address}")
    root_dir = lifecycle.resolve_root(root)
    console.print(f"sandbox up in {time.monotonic() - t0:.1f}s; state in {root_dir}")


@app.command(help="Stop every process of the twin (by pid: SIGTERM, then SIGKILL after a grace).")
def down(root: RootOpt = None) -> None:
    from runbooks.sandbox import lifecycle

    try:
        names = lifecycle.down(root)
    except lifecycle.SandboxError as e:
        err.print(f"[red]sandbox down:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"stopped: {', '.join(names)}" if names else "the sandbox was not running")


@app.command(help="Report each component, its address and health.")
def status(
    root: RootOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from runbooks.sandbox import lifecycle

    report = lifecycle.status(root)
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
    elif report["status"] in ("not running", "down"):
        console.print(f"sandbox at {report['root']}: {report['status']}")
    else:
        _print_components(report)
    if report["status"] not in ("up",):
        raise typer.Exit(3 if report["status"] in ("not running", "down") else 1)


@app.command(help="Stop the twin and wipe its state directory.")
def reset(root: RootOpt = None) -> None:
    from runbooks.sandbox import lifecycle

    try:
        lifecycle.reset(root)
    except lifecycle.SandboxError as e:
        err.print(f"[red]sandbox reset:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"sandbox reset: {lifecycle.resolve_root(root)}")


@app.command("faults", help="List the faults the twin can be built with, and the runbook check catching each.")
def list_faults(
    markdown: bool = typer.Option(False, "--markdown", help="Print the Markdown table of docs/FAULTS.md."),
) -> None:
    if markdown:
        typer.echo(fault_catalogue.markdown_table(), nl=False)
        return
    table = Table()
    for col in ("fault", "component", "description", "caught by"):
        table.add_column(col)
    for f in fault_catalogue.catalogue().values():
        table.add_row(f.name, f.component, f.description, fault_catalogue.caught_by_text(f))
    console.print(table)
