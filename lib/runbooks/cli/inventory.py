"""``runbooks inventory check``: is an environment's inventory ready for the real vendors?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect the hosting inventory.")


@app.command("check")
def check(
    env: Annotated[str, typer.Option("--env", help="production, staging or sandbox")] = "production",
    secrets: Annotated[
        bool, typer.Option("--secrets/--no-secrets", help="also check that every secret reference has a value")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
) -> None:
    """Validate every identifier against its vendor's format and every secret reference's presence
    (values are never read into the output). Exit 0 when ready, 1 with the fields to fill in, 2 when the
    inventory does not load at all."""
    from runbooks.inventory import InventoryError, load, readiness

    try:
        inventory = load(env)
    except InventoryError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    problems = readiness.check(inventory, secrets=secrets)
    if as_json:
        typer.echo(json.dumps([p.__dict__ for p in problems], indent=2))
    else:
        typer.echo(readiness.report(inventory, problems))
    raise typer.Exit(1 if problems else 0)
