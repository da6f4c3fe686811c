"""Entry point of the ``runbooks`` console script. Command groups register themselves here.

Only the module of the command being run is imported (``runbooks run`` does not pay for the sandbox's
or the archive CLI's imports): the runner's start-up is part of every scheduled run's overhead.
``runbooks --help`` and unknown commands load everything, so help lists every command.
"""

from __future__ import annotations

import importlib
import sys

import typer

HELP = (
    "Spectral hosting runbooks: run procedures as audited notebooks, inspect the archive, "
    "and drive the local twin of the hosting."
)

#: command -> module whose ``register(app)`` adds it
COMMANDS = {
    "run": "runbooks.cli.run",
    "list": "runbooks.cli.run",
    "describe": "runbooks.cli.run",
    "demo": "runbooks.cli.demo",
}
#: group -> module whose ``app`` is the typer group
GROUPS = {
    "runs": "runbooks.cli.runs",
    "sandbox": "runbooks.cli.sandbox",
    "schedule": "runbooks.cli.schedule",
    "inventory": "runbooks.cli.inventory",
    "audit": "runbooks.cli.audit",
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    app = typer.Typer(name="runbooks", no_args_is_help=True, add_completion=False, help=HELP)

    @app.callback()
    def _root() -> None:
        # a callback keeps typer in group mode when only one command is loaded (e.g. `runbooks demo`)
        pass

    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    commands = [COMMANDS[first]] if first in COMMANDS else [] if first in GROUPS else list(COMMANDS.values())
    groups = [first] if first in GROUPS else [] if first in COMMANDS else list(GROUPS)
    for module in dict.fromkeys(commands):
        importlib.import_module(module).register(app)
    for name in groups:
        app.add_typer(importlib.import_module(GROUPS[name]).app, name=name)
    return app


def __getattr__(name: str) -> typer.Typer:
    # ``from runbooks.cli.main import app`` (tests, embedding): the full app with every command
    if name == "app":
        return build_app([])
    raise AttributeError(name)


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()
