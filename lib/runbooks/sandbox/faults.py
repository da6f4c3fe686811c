"""The validated fault catalogue: every ``Component.faults`` of every registered component.

A fault builds the twin wrong on purpose (``runbooks sandbox up --fault NAME``) so that every check
can be shown to fail against a real misconfiguration. Each fault declares the runbook run(s) that must
catch it (``runbooks.sandbox.component.Catcher``); from that declaration come the end-to-end test that
proves it (``tests/e2e/test_fault_catalogue.py``, one twin per group of :func:`twin_groups`) and the table
of docs/FAULTS.md (:func:`markdown_table`, ``runbooks sandbox faults --markdown``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runbooks.sandbox.component import Catcher, FaultDeclaration, FaultSpec
from runbooks.sandbox.registry import RegistryError, component_classes


class UnknownFault(ValueError):
    """A fault name that no registered component declares."""


@dataclass(frozen=True)
class Fault:
    name: str
    component: str
    description: str
    caught_by: tuple[Catcher, ...] = ()
    #: why no runbook catches it (declared explicitly), empty otherwise
    not_caught: str = ""
    #: its catchers' runs are stopped early by other faults: it gets a twin of its own
    own_twin: bool = False
    group: str = ""

    @property
    def declared(self) -> bool:
        """The component says how the fault is caught (or, explicitly, why it is not)."""
        return bool(self.caught_by or self.not_caught)


def _fault(name: str, component: str, decl: FaultDeclaration) -> Fault:
    if isinstance(decl, str):
        return Fault(name, component, decl)
    return Fault(name, component, decl.description, decl.caught_by, decl.not_caught, decl.own_twin, decl.group)


def catalogue() -> dict[str, Fault]:
    """fault name -> Fault, sorted by name. Two components declaring the same fault is an error."""
    out: dict[str, Fault] = {}
    for comp_name, cls in component_classes().items():
        for name, decl in cls.faults.items():
            if name in out:
                raise RegistryError(f"fault {name!r} is declared by both {out[name].component} and {comp_name}")
            out[name] = _fault(name, comp_name, decl)
    return dict(sorted(out.items()))


def undeclared(faults: Iterable[Fault] | None = None) -> list[str]:
    """Names of the faults whose catcher is not declared (the old ``name: "description"`` form)."""
    return [f.name for f in (catalogue().values() if faults is None else faults) if not f.declared]


def _check_id(spec: str) -> str:
    return spec.partition("@")[0]


def _specs_overlap(a: str, b: str) -> bool:
    """``check`` overlaps every ``check@subject``; two ``check@subject`` overlap only when equal."""
    if "@" in a and "@" in b:
        return a == b
    return _check_id(a) == _check_id(b)


def interfere(a: Fault, b: Fault) -> bool:
    """Whether two faults cannot share a twin: one needs a twin of its own, they belong to different groups,
    both are caught by a refusal of the same runbook (the first refusal hides the second), or both are caught
    by the same check row of the same runbook (which fault failed it could not be told)."""
    if a.own_twin or b.own_twin or a.group != b.group:
        return True
    for ca in a.caught_by:
        for cb in b.caught_by:
            if ca.runbook != cb.runbook:
                continue
            if ca.refusal or cb.refusal:
                return True
            if any(_specs_overlap(x, y) for x in ca.checks for y in cb.checks):
                return True
    return False


def twin_groups(faults: Iterable[Fault] | None = None) -> list[tuple[Fault, ...]]:
    """The caught faults packed greedily (in name order) into groups that do not interfere: each group is one
    faulted twin on which every catcher of its faults runs."""
    groups: list[list[Fault]] = []
    for f in catalogue().values() if faults is None else faults:
        if not f.caught_by:
            continue
        for g in groups:
            if not any(interfere(f, other) for other in g):
                g.append(f)
                break
        else:
            groups.append([f])
    return [tuple(g) for g in groups]


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


def describe_catcher(c: Catcher) -> str:
    """``runbook -p k=v``: ``check``, ... FAIL / refused ("..."), for tables and listings."""
    params = "".join(f" -p {k}={v}" for k, v in sorted(c.params.items()))
    run = f"`{c.runbook}{params}`"
    if c.refusal:
        return f'{run} refused ("{c.refusal}")'
    return f"{run}: " + ", ".join(f"`{s}`" for s in c.checks) + " FAIL"


def caught_by_text(f: Fault) -> str:
    if f.caught_by:
        return "; ".join(describe_catcher(c) for c in f.caught_by)
    return f"not caught by a runbook: {f.not_caught}" if f.not_caught else "**not declared**"


def markdown_table(faults: Iterable[Fault] | None = None) -> str:
    """The fault catalogue as a Markdown table (docs/FAULTS.md embeds it; a unit test keeps them equal)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| fault | component | what is wrong | caught by |", "|---|---|---|---|"]
    for f in catalogue().values() if faults is None else faults:
        lines.append(f"| `{f.name}` | {f.component} | {cell(f.description)} | {cell(caught_by_text(f))} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "Catcher",
    "Fault",
    "FaultSpec",
    "UnknownFault",
    "catalogue",
    "caught_by_text",
    "interfere",
    "markdown_table",
    "twin_groups",
    "undeclared",
    "validate",
]
