"""``runbooks demo``: the main job (``make demo``).

Bring the twin up; run every runbook in ``notebooks/`` through the runner with its default parameters
(destructive ones therefore as a dry run); then run those whose metadata says ``runbook.demo_apply: true``
for real (``apply=true``, ``confirm=sandbox``); print a table of the runs; verify the archive; bring the
twin down (also on error or Ctrl-C). Exit status 1 if any run failed or the archive does not verify.

The archive is the twin's audit bucket (``audit:sandbox``, i.e. ``s3://spectral-audit/archive``, written
with the ``audit-writer`` credential) unless ``--archive`` or ``$RUNBOOKS_ARCHIVE`` names another one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from runbooks import paths

# off a terminal (make demo in CI, a log file) keep each run on one line of the table
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
#: the demo archives to the twin's audit bucket (the archive of record), through the audit-writer credential
DEFAULT_ARCHIVE = "audit:sandbox"


@dataclass(frozen=True)
class PlannedRun:
    procedure: str
    mode: str  #: "run" (non-destructive), "dry-run" or "apply"
    params: dict[str, str]


@dataclass
class DemoRun:
    planned: PlannedRun
    status: str
    duration: float
    run_dir: Path | None
    exit_code: int
    error: str = ""
    location: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def _metadata(path: Path) -> dict[str, Any]:
    meta = json.loads(path.read_text()).get("metadata", {}).get("runbook", {})
    return meta if isinstance(meta, dict) else {}


def plan(notebooks: list[Path], only: list[str] | None = None) -> list[PlannedRun]:
    """Every notebook with its defaults (sorted by name), then the ``demo_apply`` ones with apply."""
    chosen = [p for p in sorted(notebooks, key=lambda p: p.stem) if not only or p.stem in only]
    runs: list[PlannedRun] = []
    applies: list[PlannedRun] = []
    for p in chosen:
        meta = _metadata(p)
        destructive = bool(meta.get("destructive", False))
        runs.append(PlannedRun(p.stem, "dry-run" if destructive else "run", {}))
        if destructive and meta.get("demo_apply"):
            applies.append(PlannedRun(p.stem, "apply", {"apply": "true", "confirm": "sandbox"}))
    return runs + applies


def execute(planned: list[PlannedRun], archive: str, timeout: float | None) -> list[DemoRun]:
    from runbooks.runner.run import run_procedure

    results: list[DemoRun] = []
    for pr in planned:
        err.print(f"[dim]running[/dim] {pr.procedure} ({pr.mode}) ...")
        t0 = time.monotonic()
        try:
            out = run_procedure(
                pr.procedure,
                params=dict(pr.params),
                environment="sandbox",
                timeout=timeout,
                actor="demo",
                trigger="manual",
                archive_root=archive,
                progress=False,
            )
        except Exception as e:  # the runner refused to even start: report and carry on with the others
            results.append(DemoRun(pr, "error", time.monotonic() - t0, None, 1, f"{type(e).__name__}: {e}"))
            continue
        detail = ""
        if out.error is not None:
            detail = str(getattr(out.error, "message", "") or out.error)
        results.append(
            DemoRun(
                pr,
                str(out.status.value if hasattr(out.status, "value") else out.status),
                float(out.duration),
                out.run_dir,
                int(out.exit_code),
                detail,
                out.location,
            )
        )
        err.print(f"  -> {results[-1].status} in {results[-1].duration:.1f}s")
    return results


def table(results: list[DemoRun], archive: str) -> Table:
    t = Table(title="runbooks demo: runs against the sandbox", caption=f"archive paths are relative to {archive}")
    for col in ("procedure", "mode", "status", "duration"):
        t.add_column(col, no_wrap=True)
    t.add_column("archive", overflow="fold")
    for r in results:
        colour = "green" if r.ok else "red"
        where = r.location.removeprefix(archive).lstrip("/")
        if r.run_dir is not None:
            try:
                where = str(r.run_dir.relative_to(archive))
            except ValueError:
                where = str(r.run_dir)
        t.add_row(
            r.planned.procedure,
            r.planned.mode,
            f"[{colour}]{r.status}[/{colour}]",
            f"{r.duration:.1f}s",
            where or r.error[:200],
        )
    return t


def _archive_url(archive: str) -> str:
    """``audit:sandbox`` as the bucket URL its runs' locations start with."""
    if not paths.is_url(archive):
        return archive
    from runbooks.archive.stores import open_store

    return open_store(archive, "sandbox").url


def verify_archive(archive: str) -> tuple[bool, str]:
    from runbooks.archive.stores import open_store

    report = open_store(archive, "sandbox").verify()
    if report.ok:
        return True, f"archive verified: {report.ledger_entries} ledger entries, {report.runs_checked} runs, intact"
    lines = [f"archive verification FAILED ({len(report.findings)} finding(s)):"]
    lines += [f"  - {f.kind}: {f.run_id or ''} {f.detail}" for f in report.findings[:20]]
    return False, "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""

    @app.command("demo")
    def demo(
        root: Annotated[
            Path | None, typer.Option("--root", help="Sandbox state directory (default: .sandbox/ of the project).")
        ] = None,
        archive: Annotated[
            str | None,
            typer.Option(
                "--archive",
                help="Archive: a directory or s3://BUCKET/PREFIX (default: $RUNBOOKS_ARCHIVE, else the twin's audit "
                "bucket, audit:sandbox).",
            ),
        ] = None,
        only: Annotated[list[str] | None, typer.Option("--only", help="Run only this procedure (repeatable).")] = None,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds allowed per run.")] = 600.0,
        keep_up: Annotated[bool, typer.Option("--keep-up", help="Leave the twin running at the end.")] = False,
    ) -> None:
        """Bring the twin up, run every runbook through the runner, verify the archive, bring it down."""
        from runbooks.cli.sandbox import sigterm_as_interrupt

        with sigterm_as_interrupt():
            code = run_demo(root, archive, only, timeout, keep_up)
        raise typer.Exit(code)


def run_demo(
    root: Path | None, archive: str | None, only: list[str] | None, timeout: float | None, keep_up: bool
) -> int:
    from runbooks.runner.run import list_notebooks
    from runbooks.sandbox import lifecycle

    sandbox_dir = lifecycle.resolve_root(root)
    archive_dir = archive or os.environ.get(paths.ARCHIVE_ENV) or DEFAULT_ARCHIVE
    if not paths.is_url(archive_dir):
        archive_dir = str(Path(archive_dir).resolve())
    os.environ[paths.SANDBOX_ENV] = str(sandbox_dir)  # kernels and the inventory use this twin
    os.environ[paths.ARCHIVE_ENV] = str(archive_dir)
    notebooks = list_notebooks()
    planned = plan(notebooks, only)
    if not planned:
        err.print("[red]no runbook to run[/red] (notebooks/ is empty or --only matched nothing)")
        return 1
    was_up = lifecycle.status(sandbox_dir, check_health=False)["status"] == "up"
    t0 = time.monotonic()
    try:
        try:
            states = lifecycle.up(sandbox_dir, report=lambda n, m: err.print(f"[dim]{n:>10}[/dim]  {m}"))
        except Exception as e:
            err.print(f"[red]sandbox up failed:[/red] {e}", highlight=False)
            return 1
        console.print(
            f"sandbox up in {time.monotonic() - t0:.1f}s: " + ", ".join(f"{n} {s.address}" for n, s in states.items())
        )
        results = execute(planned, archive_dir, timeout)
        console.print(table(results, _archive_url(archive_dir)))
        ok_verify, verdict = verify_archive(archive_dir)
        console.print(verdict, style="green" if ok_verify else "red", highlight=False)
        failed = [r for r in results if not r.ok]
        for r in failed:
            err.print(
                f"[red]{r.planned.procedure} ({r.planned.mode}) {r.status}[/red]"
                + (f": {r.error}" if r.error else "")
                + (f" — record: {r.run_dir}" if r.run_dir else ""),
                highlight=False,
            )
        console.print(f"{len(results) - len(failed)}/{len(results)} runs succeeded in {time.monotonic() - t0:.0f}s")
        return 0 if not failed and ok_verify else 1
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130
    finally:
        if keep_up or was_up:
            console.print(f"the twin stays up at {sandbox_dir} (`runbooks sandbox down` stops it)")
        else:
            try:
                lifecycle.down(sandbox_dir)
                gone = (
                    f" (with the runs archived in {archive_dir}; --keep-up keeps them)"
                    if paths.is_url(archive_dir)
                    else ""
                )
                console.print(f"sandbox down{gone}")
            except Exception as e:
                err.print(f"[red]sandbox down failed:[/red] {e}")
