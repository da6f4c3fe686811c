"""``runbooks list`` and ``runbooks describe`` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks import paths
from runbooks.cli.main import app
from runbooks.runner.run import procedure_name, resolve_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
runner = CliRunner()


@pytest.fixture
def test_notebooks(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "notebooks_dir", lambda: NOTEBOOKS)
    return NOTEBOOKS


def test_list_shows_procedures(test_notebooks: Path) -> None:
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert {"succeed", "raise", "sleep", "destructive", "leak_secret", "kill_kernel"} <= set(rows)
    assert rows["destructive"]["destructive"] is True and rows["succeed"]["destructive"] is False
    assert rows["succeed"]["title"] == "Succeeds and records results"
    table = runner.invoke(app, ["list"])
    assert table.exit_code == 0 and "destructive" in table.output and "Sleeps" in table.output


def test_describe_by_name_and_by_path(test_notebooks: Path) -> None:
    res = runner.invoke(app, ["describe", "succeed", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    params = {p["name"]: p for p in d["parameters"]}
    assert params["count"] == {"name": "count", "type": "int", "default": 3, "help": "how many rows to produce",
                               "choices": None}  # fmt: skip
    assert params["mode"]["choices"] == ["fast", "slow"]
    text = runner.invoke(app, ["describe", str(NOTEBOOKS / "destructive.ipynb")])
    assert text.exit_code == 0
    assert "destructive: yes" in text.output and "confirm" in text.output and "apply" in text.output


def test_describe_unknown_procedure_lists_known_ones(test_notebooks: Path) -> None:
    res = runner.invoke(app, ["describe", "no-such-runbook"])
    assert res.exit_code == 2
    assert "unknown procedure 'no-such-runbook'" in res.output and "succeed" in res.output


def test_names_and_paths(test_notebooks: Path) -> None:
    assert resolve_notebook("raise") == NOTEBOOKS / "raise.ipynb"
    assert procedure_name(str(NOTEBOOKS / "raise.ipynb")) == "raise" and procedure_name("check-x") == "check-x"
