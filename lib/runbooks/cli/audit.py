"""``runbooks audit site OUT``: the static audit site (see docs/AUDIT_SITE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runbooks.audit.build import SiteError, build_site
from runbooks.audit.compliance import ComplianceFileError
from runbooks.cli.options import ArchiveOpt

app = typer.Typer(no_args_is_help=True, help="Audit review of the archive: a static site auditors open in a browser.")


@app.command()
def site(
    out: Annotated[
        Path, typer.Argument(help="Directory of the site (created; rebuilt in place: only changes are written).")
    ],
    archive_dir: ArchiveOpt = None,
    mirror_dir: Annotated[
        Path | None,
        typer.Option(
            "--mirror",
            help="For a bucket archive: the local copy the site is built from (default: OUT.archive-mirror next to "
            "OUT; only new entries are copied).",
            show_default=False,
        ),
    ] = None,
    compliance: Annotated[
        Path | None,
        typer.Option("--compliance", help="Schedule compliance JSON (docs/AUDIT_SITE.md): adds compliance.html."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Processes rendering run pages (0: one per CPU, at most 4).")
    ] = 0,
    full_verify: Annotated[
        bool, typer.Option("--full-verify", help="Re-hash every run, even those unchanged since the last build.")
    ] = False,
) -> None:
    """Build the site from the archived (redacted) files only: index, run, procedure pages, verify banner.

    A bucket archive (the archive of record) is first copied, entry for entry, into a local mirror
    (``runbooks runs pull``), which the site is built and verified from."""
    try:
        root = _local_archive(out, archive_dir, mirror_dir)
        report = build_site(out, root, compliance_file=compliance, workers=workers or None, full_verify=full_verify)
    except (SiteError, ComplianceFileError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    verdict = "archive intact" if report.verify_ok else f"archive NOT intact: {report.findings} finding(s)"
    typer.echo(
        f"{out}/index.html: {report.runs} run(s); {len(report.written)} file(s) written, {report.unchanged} unchanged, "
        f"{len(report.removed)} removed; {verdict} ({report.rehashed} run(s) re-hashed) in {report.seconds:.1f}s"
    )
    if not report.verify_ok:
        raise typer.Exit(1)


def _local_archive(out: Path, archive: str | None, mirror_dir: Path | None) -> Path | None:
    """The local archive to build from: the directory given, or a mirror of the bucket brought up to date."""
    from runbooks.paths import is_url

    if not archive or not is_url(archive):
        return Path(archive) if archive else None
    from runbooks.archive.objects import StoreUnavailable
    from runbooks.archive.s3verify import mirror
    from runbooks.archive.store import Archive, ArchiveError
    from runbooks.archive.stores import open_store

    target = mirror_dir or out.with_name(out.name + ".archive-mirror")
    try:
        copied = mirror(open_store(archive), Archive(target))
    except (ArchiveError, ValueError, StoreUnavailable) as exc:
        raise SiteError(f"--archive {archive}: {exc}") from None
    typer.echo(f"mirrored {len(copied)} new run(s) from {archive} into {target}", err=True)
    return target
