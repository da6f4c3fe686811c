"""The registry of twin components: one line per component, ``"module:Class"``.

To plug a component in, add its import path to :data:`COMPONENTS`. A module that does not exist
(yet) is skipped; a module that exists but fails to import is an error, reported with its cause.
Start order is computed from ``Component.depends_on``, not from the order of this list.
"""

from __future__ import annotations

import importlib
from functools import cache

from runbooks.sandbox.component import Component

COMPONENTS: list[str] = [
    "runbooks.sandbox.components.postgres:PostgresComponent",
    "runbooks.sandbox.components.s3:S3Component",
    "runbooks.sandbox.components.supabase:SupabaseComponent",
    "runbooks.sandbox.components.edge:EdgeComponent",
    "runbooks.sandbox.components.render:RenderComponent",
    "runbooks.sandbox.components.alerts:AlertsComponent",
]


class RegistryError(RuntimeError):
    """A registered component cannot be loaded, or the dependency graph is broken."""


def _load(spec: str) -> type[Component] | None:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            return None  # the component's module is not written yet: skip it
        raise RegistryError(f"component {spec}: cannot import: {e}") from e
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise RegistryError(f"component {spec}: module has no attribute {attr!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise RegistryError(f"component {spec}: {attr} is not a runbooks.sandbox.component.Component")
    return cls


@cache
def _found() -> dict[str, type[Component]]:
    found: dict[str, type[Component]] = {}
    for spec in COMPONENTS:
        cls = _load(spec)
        if cls is not None:
            found[cls.name] = cls
    return found


def _missing_dependency(found: dict[str, type[Component]], name: str, seen: tuple[str, ...] = ()) -> str | None:
    for dep in found[name].depends_on:
        if dep not in found:
            return dep
        if dep not in seen:
            missing = _missing_dependency(found, dep, (*seen, name))
            if missing:
                return missing
    return None


def skipped_components() -> dict[str, str]:
    """Registered components left out because a dependency's module does not exist: name -> missing dep."""
    found = _found()
    return {n: m for n in found if (m := _missing_dependency(found, n)) is not None}


def component_classes() -> dict[str, type[Component]]:
    """name -> class of every registered component that can run (its module and its dependencies'
    modules exist), in dependency order."""
    found = _found()
    skipped = skipped_components()
    usable = {n: c for n, c in found.items() if n not in skipped}
    return {name: usable[name] for name in dependency_order(usable, list(usable))}


def dependency_order(classes: dict[str, type[Component]], wanted: list[str]) -> list[str]:
    """``wanted`` plus their transitive dependencies, dependencies first (stable w.r.t. registry order)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name not in classes:
            via = f" (needed by {path[-1]})" if path else ""
            raise RegistryError(f"unknown component {name!r}{via}; registered: {', '.join(classes) or 'none'}")
        if name in visiting:
            raise RegistryError(f"dependency cycle: {' -> '.join((*path, name))}")
        visiting.add(name)
        for dep in classes[name].depends_on:
            visit(dep, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order
