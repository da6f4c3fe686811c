"""docs/ARCHITECTURE.md's layout matches the code: every module it names exists in the package it is listed
under, and every module of the package and of its first-level subpackages is named (no drift either way)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "lib" / "runbooks"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def _layout() -> dict[str, str]:
    """Entry of the package (``""`` for the top level, ``"runner"`` ...) -> the text that describes it."""
    block = DOC.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        top = re.match(r"^  (\S+)\s+(.*)$", line)
        if line.startswith("lib/runbooks/") or re.match(r"^\S", line):
            current = None
        elif top:
            name = top.group(1)
            current = name.rstrip("/") if name.endswith("/") else ""
            entries[current] = entries.get(current, "") + " " + (name if not name.endswith("/") else "") + " "
            entries[current] += top.group(2)
        elif current is not None:
            entries[current] += " " + line.strip()
    return entries


def test_every_module_the_layout_names_exists() -> None:
    missing = []
    for pkg, text in _layout().items():
        base = PKG / pkg if pkg else PKG
        for name in set(re.findall(r"\b([a-z_][a-z0-9_]*\.py)\b", text)):
            if not any(base.rglob(name)):
                missing.append(f"{pkg or '.'}: {name}")
    assert missing == [], "docs/ARCHITECTURE.md names modules that do not exist"


def test_every_module_is_in_the_layout() -> None:
    layout = _layout()
    unnamed = []
    for path in sorted(PKG.glob("*.py")) + sorted(PKG.glob("*/*.py")):
        if path.name == "__init__.py" or path.name == "__main__.py":
            continue
        pkg = "" if path.parent == PKG else path.parent.name
        if pkg not in layout or path.name not in layout[pkg]:
            unnamed.append(str(path.relative_to(PKG)))
    assert unnamed == [], "modules missing from docs/ARCHITECTURE.md's layout"
