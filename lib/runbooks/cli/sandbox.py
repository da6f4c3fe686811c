"""``runbooks sandbox up|down|status|reset`` (owned by the sandbox lifecycle)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Drive the local twin of Spectral's hosting.")
