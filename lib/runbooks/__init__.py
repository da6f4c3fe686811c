"""Spectral hosting runbooks: the notebook-facing API.

Notebooks do ``import runbooks`` and use:

- ``runbooks.secret(ref)``: resolve a secret reference, registering the value for redaction;
- ``runbooks.record(name, value)``: record a structured result into the run record;
- ``runbooks.guard_apply(apply, confirm, environment)``: the single gate of destructive steps; it returns the
  authorisation a procedure's apply requires (:mod:`runbooks.plan`);
- ``runbooks.end_apply()``: the end of an apply (the last cell of a destructive runbook): in Jupyter, commits
  the interactive apply's record and releases the lock; under the runner it does nothing;
- ``runbooks.load_inventory(environment)``: the validated inventory of an environment, refused
  (``BadParameter``, exit 2) outside the sandbox while identifiers are not filled in
  (``runbooks.inventory`` is the subpackage: models, loader, readiness);
- ``runbooks.show(results)``: display check results (or any table) as a table;
- ``runbooks.BadParameter(name, value, problem, fix, allowed=None)``: raise it when a parameter's value is
  unusable, before any change; the runner records the run as ``refused`` (exit 2). The value is shown
  only if it is one of ``allowed`` (a closed set); otherwise it is withheld from the record.

Attributes are imported lazily so that ``import runbooks`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "secret": ("runbooks.secrets", "secret"),
    "record": ("runbooks.kernel.results", "record"),
    "show": ("runbooks.kernel.results", "show"),
    "guard_apply": ("runbooks.kernel.guard", "guard_apply"),
    "ApplyRefused": ("runbooks.kernel.guard", "ApplyRefused"),
    "end_apply": ("runbooks.kernel.interactive", "end_apply"),
    "BadParameter": ("runbooks.errors", "BadParameter"),
    "Refused": ("runbooks.errors", "Refused"),
    "load_inventory": ("runbooks.inventory.readiness", "load_ready"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'runbooks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
