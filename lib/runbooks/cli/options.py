"""Options shared by the command groups: one spelling of ``--archive`` and ``--json`` across the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from runbooks.paths import ARCHIVE_ENV

ArchiveOpt = Annotated[
    str | None,
    typer.Option(
        "--archive",
        envvar=ARCHIVE_ENV,
        help="Archive: a directory (default: runs/ of the project), s3://BUCKET/PREFIX or audit:ENV.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
