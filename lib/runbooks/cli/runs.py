"""``runbooks runs list|show|verify|reindex`` (owned by the archive)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect and verify the audit archive of runs.")
