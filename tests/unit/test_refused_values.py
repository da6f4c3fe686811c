"""Issue 9, item 8: a refused value (--trigger, --confirm, a runbook's BadParameter) is not echoed anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from runbooks import redact
from runbooks.errors import BadParameter
from runbooks.kernel.guard import ApplyRefused, guard_apply
from runbooks.redact import NOT_RECORDED, Redactor
from runbooks.runner.params import NotebookSpec as Spec
from runbooks.runner.params import ParamError, parse_parameters_cell, validate
from runbooks.runner.run import run_procedure

PASTED = "sk_live_51PastedByMistake0000"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def fresh_redactor(monkeypatch: pytest.MonkeyPatch) -> Redactor:
    """This process's redactor, empty for the test (other tests refuse values too)."""
    red = Redactor()
    monkeypatch.setattr(redact, "_default", red)
    return red


def test_bad_parameter_does_not_repeat_a_value_outside_the_allowed_set(fresh_redactor: Redactor) -> None:
    e = BadParameter("hostname", PASTED, "not a hostname of the inventory", "give one of: app, api")
    assert str(e) == "hostname (value not shown): not a hostname of the inventory; give one of: app, api"
    assert e.name == "hostname" and e.value == PASTED
    # the value is withheld from the record and scrubbed wherever it shows
    assert fresh_redactor.withheld["hostname"] == PASTED
    assert PASTED not in redact.scrub(f"validating {PASTED}")
    # a value of a closed set of allowed values may be repeated (it cannot be a secret)
    ok = BadParameter("colour", "rollback", "nothing to roll back to", "say blue or green",
                      allowed=("blue", "green", "rollback"))  # fmt: skip
    assert str(ok).startswith("colour='rollback': nothing to roll back to")
    assert "colour" not in fresh_redactor.withheld


def test_withheld_parameters_leave_the_record_and_the_injected_cell() -> None:
    red = Redactor()
    red.register("abc", redact.REFUSED_LABEL + "hostname")  # short: not scrubbed, but withheld all the same
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"hostname": "abc", "environment": "sandbox"}}
    cell = nbformat.v4.new_code_cell('# Parameters\nhostname = "abc"\nenvironment = "sandbox"\n')
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.append(cell)
    red.scrub_notebook(nb)
    assert nb.metadata["papermill"]["parameters"] == {"hostname": NOT_RECORDED, "environment": "sandbox"}
    assert nb.cells[0].source == f'# Parameters\nhostname = {NOT_RECORDED!r}\nenvironment = "sandbox"\n'
    assert red.withhold({"hostname": "abc", "environment": "sandbox"}) == {
        "hostname": NOT_RECORDED,
        "environment": "sandbox",
    }


def test_confirm_must_name_an_environment_and_is_not_echoed() -> None:
    spec = Spec("x", Path("x.ipynb"), "x", "", True, None,
                parse_parameters_cell('apply: bool = False  # go\nconfirm: str = ""  # env'))  # fmt: skip
    assert validate(spec, {"confirm": "staging"}) == {"confirm": "staging"}
    assert validate(spec, {"confirm": ""}) == {"confirm": ""}
    with pytest.raises(ParamError) as e:
        validate(spec, {"confirm": PASTED})
    assert "confirm" in str(e.value) and "production" in str(e.value) and PASTED not in str(e.value)


def test_guard_apply_does_not_echo_a_confirm_that_is_no_environment() -> None:
    with pytest.raises(ApplyRefused) as e:
        guard_apply(True, PASTED, "staging")
    assert PASTED not in str(e.value) and "confirm=" in str(e.value)
    with pytest.raises(ApplyRefused, match="confirm='production' does not name"):
        guard_apply(True, "production", "staging")


def test_a_refused_trigger_is_neither_echoed_nor_recorded(tmp_path: Path) -> None:
    outcome = run_procedure(NOTEBOOKS / "succeed.ipynb", trigger=PASTED, archive_root=tmp_path)
    assert outcome.exit_code == 2 and outcome.error is not None
    assert "--trigger must be one of manual, schedule" in outcome.error.message
    assert PASTED not in outcome.error.message
    assert outcome.run_dir is not None
    assert PASTED not in (outcome.run_dir / "run.json").read_text()
    assert json.loads((outcome.run_dir / "run.json").read_text())["trigger"] == NOT_RECORDED
