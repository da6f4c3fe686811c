"""A runbook's declared parameters, read from its ``parameters`` cell, and validation of ``-p key=value``.

The cell declares one parameter a line (see docs/ARCHITECTURE.md)::

    environment: str = "sandbox"  # target environment [one of: production, staging, sandbox]
    min_cert_days: int = 14  # warn when a certificate expires sooner

The cell is parsed with :mod:`ast` (the annotation gives the type, the literal the default) and
:mod:`tokenize` (the comment on the same line gives the help and the optional ``[one of: ...]``).
Nothing is executed. Validation happens in the runner before any kernel starts; every error names
the parameter and the fix.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runbooks import redact
from runbooks.paths import known_environments

TYPES = ("str", "int", "float", "bool")
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_CHOICES = re.compile(r"\[\s*one of:\s*(?P<choices>[^\]]*)\]\s*$", re.IGNORECASE)


#: what a message says instead of echoing a value that failed validation (it may be a pasted secret)
_NOT_ECHOED = ": the value given is not valid (not repeated here, nor recorded)"
NOT_RECORDED = redact.NOT_RECORDED
#: the confirmation parameter of destructive runbooks (``--confirm ENV``): its value must be an environment
CONFIRM = "confirm"


def is_name(name: object) -> bool:
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None


class ParamError(ValueError):
    """A parameter (or the parameters cell) is malformed; the message names it and the fix."""


class NotebookError(ValueError):
    """The notebook cannot be read or has no usable parameters cell."""


@dataclass
class Param:
    name: str
    type: str
    default: Any
    help: str = ""
    choices: list[Any] | None = None

    @property
    def is_ref(self) -> bool:
        return self.name.endswith("_ref")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NotebookSpec:
    """What ``runbooks list``/``describe`` show and what the runner validates against."""

    name: str
    path: Path
    title: str
    summary: str
    destructive: bool
    schedule: str | None
    params: dict[str, Param] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "title": self.title,
            "summary": self.summary,
            "destructive": self.destructive,
            "schedule": self.schedule,
            "parameters": [p.to_dict() for p in self.params.values()],
        }


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out.setdefault(tok.start[0], tok.string.lstrip("#").strip())
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _annotation_type(node: ast.expr | None, default: Any) -> str:
    if isinstance(node, ast.Name) and node.id in TYPES:
        return node.id
    if node is None:
        for t in (bool, int, float, str):  # bool before int
            if isinstance(default, t):
                return t.__name__
        return "str"
    return ast.unparse(node)


def parse_parameters_cell(source: str, where: str = "parameters cell") -> dict[str, Param]:
    """Declared parameters of a ``parameters`` cell's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise NotebookError(f"{where}: not valid Python (line {e.lineno}: {e.msg})") from None
    comments = _comments(source)
    params: dict[str, Param] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name, annotation, value = stmt.target.id, stmt.annotation, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, annotation, value = stmt.targets[0].id, None, stmt.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            raise NotebookError(f"{where}: the default of {name!r} must be a literal (line {stmt.lineno})") from None
        comment = next(
            (comments[ln] for ln in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1) if ln in comments), ""
        )
        ptype = _annotation_type(annotation, default)
        choices: list[Any] | None = None
        m = _CHOICES.search(comment)
        if m:
            comment = comment[: m.start()].rstrip()
            raw = [c.strip().strip("'\"") for c in m["choices"].split(",") if c.strip()]
            try:
                choices = [convert(name, ptype, c) for c in raw]
            except ParamError as e:
                raise NotebookError(f"{where}: bad [one of: ...] for {name!r}: {e}") from None
        params[name] = Param(name, ptype, default, comment, choices)
    return params


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        nb = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except (OSError, ValueError) as e:
        raise NotebookError(f"{path}: not a readable notebook ({type(e).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook (no cells)")
    return nb


def spec_of(nb: dict[str, Any], path: Path) -> NotebookSpec:
    meta = nb.get("metadata", {}).get("runbook", {}) or {}
    cell = next(
        (c for c in nb["cells"] if "parameters" in (c.get("metadata", {}).get("tags") or [])),
        None,
    )
    params = parse_parameters_cell(_source(cell), f"{path.name}: parameters cell") if cell else {}
    return NotebookSpec(
        name=path.stem,
        path=path,
        title=str(meta.get("title") or path.stem),
        summary=str(meta.get("summary") or ""),
        destructive=bool(meta.get("destructive", False)),
        schedule=meta.get("schedule") or None,
        params=params,
    )


def load_spec(path: Path) -> NotebookSpec:
    """Read the notebook at ``path`` and return its spec."""
    return spec_of(_read_notebook(path), path)


def convert(name: str, ptype: str, raw: Any) -> Any:
    """Convert a raw ``-p`` string to ``ptype``; raises ParamError naming the parameter."""
    if not isinstance(raw, str):
        if ptype == "float" and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        expected = {"str": str, "int": int, "float": float, "bool": bool}.get(ptype)
        if expected is None or (isinstance(raw, expected) and not (expected is int and isinstance(raw, bool))):
            return raw
        raw = str(raw)
    if ptype == "str":
        return raw
    if ptype == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ParamError(f"parameter {name!r} is a bool{_NOT_ECHOED}; say true/false (or yes/no, 1/0)")
    if ptype == "int":
        try:
            return int(raw.strip().replace("_", ""), 10)
        except ValueError:
            raise ParamError(f"parameter {name!r} is an int{_NOT_ECHOED}; give a whole number such as 14") from None
    if ptype == "float":
        try:
            return float(raw.strip())
        except ValueError:
            raise ParamError(f"parameter {name!r} is a float{_NOT_ECHOED}; give a number such as 0.5") from None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise ParamError(f"parameter {name!r} ({ptype}){_NOT_ECHOED}; give a Python literal") from None


def validate(spec: NotebookSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Converted values of ``given``; raises ParamError on the first problem, naming it and the fix."""
    out: dict[str, Any] = {}
    known = ", ".join(spec.params) or "(none)"
    for name, raw in given.items():
        if not is_name(name):
            raise ParamError(
                "a -p name is not a parameter name (letters, digits and _; it was not recorded); write -p name=value"
            )
        if name not in spec.params:
            raise ParamError(
                f"unknown parameter {name!r} for {spec.name} (its value was not recorded); known parameters: {known}"
            )
        p = spec.params[name]
        value = convert(name, p.type, raw)
        if p.is_ref:
            from runbooks.secrets import is_ref, schemes

            if not is_ref(value):  # the value may be a pasted secret: never echo it
                refs = ", ".join(f"{s}:..." for s in schemes())
                raise ParamError(
                    f"parameter {name!r} takes a secret reference ({refs}, e.g. env:NAME), never a value; "
                    "the value given is not one (it was not recorded)"
                )
        if p.choices is not None and value not in p.choices:
            choices = ", ".join(str(c) for c in p.choices)
            raise ParamError(f"parameter {name!r} must be one of: {choices}{_NOT_ECHOED}")
        if name == CONFIRM and isinstance(p.default, str) and value != "" and value not in known_environments():
            raise ParamError(  # --confirm takes an environment's name: anything else may be a pasted secret
                f"parameter {name!r} (--confirm) must name the target environment{_NOT_ECHOED}; "
                f"say one of {', '.join(known_environments())}"
            )
        if name == "environment":
            envs = known_environments()
            if value not in envs:
                raise ParamError(
                    f"parameter 'environment': no inventory for the value given{_NOT_ECHOED}; "
                    f"choose one of {', '.join(envs)}"
                )
        out[name] = value
    return out


def recordable(spec: NotebookSpec | None, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` as the record of a refused run may hold it: a value that does not pass validation (an unknown
    name, a bad value, a non-reference for a ``*_ref``) becomes ``[not recorded]``, since it may be a pasted
    secret; a name that is not a parameter name is left out. Without a spec nothing can be validated."""
    out: dict[str, Any] = {}
    for name, raw in given.items():
        if not is_name(name):
            continue
        try:
            ok = spec is not None and name in spec.params and name in validate(spec, {name: raw})
        except ParamError:
            ok = False
        out[name] = raw if ok else NOT_RECORDED
    return out


def split_assignments(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; raises ParamError on a missing ``=``."""
    out: dict[str, str] = {}
    for number, pair in enumerate(pairs, 1):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():  # the text may be a pasted secret (name:value): never echo it
            raise ParamError(
                f"-p option number {number} has no name=value (it was not recorded: it may hold a value); "
                "write -p name=value"
            )
        name = name.strip()
        if name in out and out[name] != value:
            raise ParamError(f"parameter {name!r} given twice with different values; give it once")
        out[name] = value
    return out
