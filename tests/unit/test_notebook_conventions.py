"""Every runbook in notebooks/ follows the conventions of docs/ARCHITECTURE.md (``Notebook conventions``)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.runner.params import TYPES, load_spec, parse_parameters_cell

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ENVIRONMENTS = ["production", "staging", "sandbox"]


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _parameters_source(nb: dict[str, Any]) -> str:
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "no code cell"
    first = code[0]
    assert "parameters" in (first.get("metadata", {}).get("tags") or []), "the first code cell is not tagged parameters"
    return _source(first)


def test_there_are_runbooks() -> None:
    assert len(PATHS) >= 5


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_metadata(path: Path) -> None:
    meta = _read(path)["metadata"].get("runbook")
    assert isinstance(meta, dict), "metadata.runbook is missing"
    for key in ("title", "summary"):
        assert isinstance(meta.get(key), str) and meta[key].strip(), f"runbook.{key} is missing or empty"
    assert isinstance(meta.get("destructive"), bool), "runbook.destructive must be true or false"
    assert meta.get("schedule") is None or isinstance(meta["schedule"], str)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_parameters_cell_declares_each_parameter_with_a_type_and_help(path: Path) -> None:
    source = _parameters_source(_read(path))
    tree = ast.parse(source)
    assert tree.body, "the parameters cell is empty"
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name), (
            f"line {stmt.lineno}: declare one parameter a line as `name: type = default  # help`"
        )
        assert isinstance(stmt.annotation, ast.Name) and stmt.annotation.id in TYPES, (
            f"{stmt.target.id}: the type hint must be one of {', '.join(TYPES)}"
        )
        assert stmt.value is not None, f"{stmt.target.id}: no default"
    params = parse_parameters_cell(source, path.name)
    assert [s.target.id for s in tree.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)] == list(
        params
    )
    for p in params.values():
        assert p.help.strip(), f"{p.name}: no help comment"
        assert type(p.default).__name__ == p.type or (p.type == "float" and type(p.default) is int), (
            f"{p.name}: the default {p.default!r} is not a {p.type}"
        )
    env = params.get("environment")
    assert env is not None, "no `environment` parameter"
    assert env.type == "str" and env.choices is not None and sorted(env.choices) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_apply_and_confirm_iff_destructive(path: Path) -> None:
    nb = _read(path)
    destructive = nb["metadata"]["runbook"]["destructive"]
    params = parse_parameters_cell(_parameters_source(nb), path.name)
    if destructive:
        assert "apply" in params and params["apply"].type == "bool" and params["apply"].default is False
        assert "confirm" in params and params["confirm"].type == "str" and params["confirm"].default == ""
        body = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
        assert "guard_apply(" in body, "a destructive runbook calls runbooks.guard_apply before its first change"
    else:
        assert "apply" not in params and "confirm" not in params, "apply/confirm belong to destructive runbooks"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_without_outputs(path: Path) -> None:
    for i, cell in enumerate(_read(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_describe_parses_it(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem and "environment" in spec.params
    result = CliRunner().invoke(app, ["describe", path.stem, "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["name"] == path.stem and [p["name"] for p in described["parameters"]] == list(spec.params)


def _bad_notebook(tmp_path: Path, params: str, *, destructive: bool = False, outputs: bool = False) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["runbook"] = {"title": "", "summary": "s", "destructive": destructive, "schedule": None}
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    step = nbformat.v4.new_code_cell("print(1)")
    if outputs:
        step.outputs = [nbformat.v4.new_output("stream", text="1\n")]
        step.execution_count = 1
    nb.cells.append(step)
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    return path


ENV_LINE = 'environment: str = "sandbox"  # target [one of: production, staging, sandbox]'


@pytest.mark.parametrize(
    ("check", "params", "kwargs"),
    [
        (test_metadata, ENV_LINE, {}),  # empty title
        (test_parameters_cell_declares_each_parameter_with_a_type_and_help, ENV_LINE + "\ncount = 3  # no hint", {}),
        (test_parameters_cell_declares_each_parameter_with_a_type_and_help, ENV_LINE + "\ncount: int = 3", {}),
        (test_parameters_cell_declares_each_parameter_with_a_type_and_help, 'region: str = "eu"  # where', {}),
        (test_apply_and_confirm_iff_destructive, ENV_LINE, {"destructive": True}),
        (test_apply_and_confirm_iff_destructive, ENV_LINE + "\napply: bool = False  # apply", {}),
        (test_committed_without_outputs, ENV_LINE, {"outputs": True}),
    ],
)
def test_the_checks_catch_a_bad_notebook(tmp_path: Path, check: Any, params: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        check(_bad_notebook(tmp_path, params, **kwargs))
