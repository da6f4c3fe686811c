"""``runbooks run``, ``runbooks list``, ``runbooks describe`` (owned by the runner)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the run/list/describe commands to ``app``."""
