"""Entry point of the ``runbooks`` console script. Command groups register themselves here."""

from __future__ import annotations

import typer

from runbooks.cli import demo, run, runs, sandbox

app = typer.Typer(
    name="runbooks",
    no_args_is_help=True,
    add_completion=False,
    help="Spectral hosting runbooks: run procedures as audited notebooks, inspect the archive, "
    "and drive the local twin of the hosting.",
)
run.register(app)  # run, list, describe
app.add_typer(runs.app, name="runs")
app.add_typer(sandbox.app, name="sandbox")
demo.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
