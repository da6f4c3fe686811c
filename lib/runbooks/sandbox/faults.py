"""The validated fault catalogue: every ``Component.faults`` of every registered component.

A fault builds the twin wrong on purpose (``runbooks sandbox up --fault NAME``) so that every check
can be shown to fail against a real misconfiguration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runbooks.sandbox.registry import RegistryError, component_classes


class UnknownFault(ValueError):
    """A fault name that no registered component declares."""


@dataclass(frozen=True)
class Fault:
    name: str
    component: str
    description: str


def catalogue() -> dict[str, Fault]:
    """fault name -> Fault, sorted by name. Two components declaring the same fault is an error."""
    out: dict[str, Fault] = {}
    for comp_name, cls in component_classes().items():
        for name, description in cls.faults.items():
            if name in out:
                raise RegistryError(f"fault {name!r} is declared by both {out[name].component} and {comp_name}")
            out[name] = Fault(name, comp_name, description)
    return dict(sorted(out.items()))


def validate(names: Iterable[str]) -> frozenset[str]:
    """The fault set, or UnknownFault listing the valid names."""
    wanted = frozenset(n.strip() for n in names if n.strip())
    known = catalogue()
    unknown = sorted(wanted - known.keys())
    if unknown:
        listing = "\n".join(f"  {f.name:32} {f.description}" for f in known.values())
        raise UnknownFault(f"unknown fault(s): {', '.join(unknown)}. Known faults:\n{listing or '  (none registered)'}")
    return wanted


def help_text() -> str:
    """One line per fault, for ``runbooks sandbox up --help``."""
    try:
        faults = catalogue()
    except RegistryError as e:
        return f"(fault catalogue unavailable: {e})"
    if not faults:
        return "(no faults registered)"
    return "\n".join(f"{f.name} ({f.component}): {f.description}" for f in faults.values())
