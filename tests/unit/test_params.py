"""runbooks.runner.params: the parameters cell, describe data, and validation of -p values."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.runner.params import (
    NotebookError,
    NotebookSpec,
    ParamError,
    convert,
    load_spec,
    parse_parameters_cell,
    recordable,
    split_assignments,
    validate,
)

CELL = """environment: str = "sandbox"  # target environment [one of: production, staging, sandbox]
min_cert_days: int = 14  # warn when a certificate expires sooner
ratio: float = 0.5
apply: bool = False  # make changes
confirm: str = ""  # must equal the environment to apply
db_ref: str = "sandbox:database_url"  # the database (a secret reference)
level: int = 1  # how deep [one of: 1, 2, 3]
untyped = "x"  # no annotation
"""
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def spec() -> NotebookSpec:
    return NotebookSpec("demo", Path("demo.ipynb"), "Demo", "", False, None, parse_parameters_cell(CELL))


def test_parse_types_defaults_help_and_choices(spec: NotebookSpec) -> None:
    p = spec.params
    assert list(p) == ["environment", "min_cert_days", "ratio", "apply", "confirm", "db_ref", "level", "untyped"]
    assert (p["environment"].type, p["environment"].default) == ("str", "sandbox")
    assert p["environment"].help == "target environment"
    assert p["environment"].choices == ["production", "staging", "sandbox"]
    assert (p["min_cert_days"].type, p["min_cert_days"].default) == ("int", 14)
    assert p["min_cert_days"].help == "warn when a certificate expires sooner" and p["min_cert_days"].choices is None
    assert (p["ratio"].type, p["ratio"].help) == ("float", "")
    assert (p["apply"].type, p["apply"].default) == ("bool", False)
    assert p["level"].choices == [1, 2, 3]
    assert p["db_ref"].is_ref and not p["confirm"].is_ref
    assert p["untyped"].type == "str"


def test_parse_rejects_non_literal_defaults_and_bad_syntax() -> None:
    with pytest.raises(NotebookError, match="default of 'x' must be a literal"):
        parse_parameters_cell("x: int = compute()")
    with pytest.raises(NotebookError, match="not valid Python"):
        parse_parameters_cell("x: int = (")
    with pytest.raises(NotebookError, match="bad \\[one of"):
        parse_parameters_cell("n: int = 1  # [one of: a, b]")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("on", True), ("false", False), ("NO", False), ("0", False)],
)
def test_bool_conversion(raw: str, expected: bool) -> None:
    assert convert("apply", "bool", raw) is expected


def test_validate_converts(spec: NotebookSpec) -> None:
    out = validate(spec, {"min_cert_days": "21", "ratio": "0.1", "apply": "yes", "level": "2", "db_ref": "env:DB",
                          "environment": "staging"})  # fmt: skip
    assert out == {"min_cert_days": 21, "ratio": 0.1, "apply": True, "level": 2, "db_ref": "env:DB",
                   "environment": "staging"}  # fmt: skip
    assert validate(spec, {"min_cert_days": 7}) == {"min_cert_days": 7}  # python values from the API


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"min_cert_dayz": "3"},
            r"unknown parameter 'min_cert_dayz' for demo \(its value was not recorded\); known parameters: env",
        ),
        (
            {"min_cert_days": "soon"},
            r"parameter 'min_cert_days' is an int: the value given is not valid.*; give a whole number",
        ),
        ({"ratio": "x"}, r"parameter 'ratio' is a float: the value given is not valid"),
        ({"apply": "perhaps"}, r"parameter 'apply' is a bool: the value given is not valid.*; say true/false"),
        ({"level": "4"}, r"parameter 'level' must be one of: 1, 2, 3: the value given is not valid"),
        ({"environment": "qa"}, r"parameter 'environment' must be one of: production, staging, sandbox"),
        ({"db_ref": "postgres://u:p@h/db"}, r"parameter 'db_ref' takes a secret reference .*never a value"),
        ({"db_ref": "vault:x"}, r"parameter 'db_ref' takes a secret reference"),
        ({"bad name": "1"}, r"is not a parameter name"),
    ],
)
def test_validate_errors_name_the_parameter_and_the_fix(
    spec: NotebookSpec, given: dict[str, str], message: str
) -> None:
    with pytest.raises(ParamError, match=message) as e:
        validate(spec, given)
    for name, value in given.items():  # a value that fails validation may be a pasted secret: never echoed
        assert repr(value) not in str(e.value) and (name == "bad name" or f"'{name}'" in str(e.value))


def test_environment_must_have_an_inventory() -> None:
    spec = NotebookSpec(
        "x", Path("x.ipynb"), "X", "", False, None, parse_parameters_cell('environment: str = "sandbox"')
    )
    with pytest.raises(
        ParamError, match=r"no inventory for the value given.*; choose one of production, sandbox, staging"
    ):
        validate(spec, {"environment": "qa"})


def test_split_assignments() -> None:
    assert split_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ParamError, match="write -p name=value") as e:
        split_assignments(["a=1", "token_ref:SuperSecretPassw0rd"])
    assert "SuperSecret" not in str(e.value) and "token_ref" not in str(e.value) and "number 2" in str(e.value)
    with pytest.raises(ParamError, match="given twice"):
        split_assignments(["a=1", "a=2"])


def test_recordable_keeps_only_values_that_validate(spec: NotebookSpec) -> None:
    given = {"min_cert_days": "21", "db_password": "Sup3rS3cretValue9", "ratio": "half", "db_ref": "hunter2hunter2",
             "bad name": "x", "level": "2"}  # fmt: skip
    assert recordable(spec, given) == {"min_cert_days": "21", "db_password": "[not recorded]",
                                       "ratio": "[not recorded]", "db_ref": "[not recorded]", "level": "2"}  # fmt: skip
    assert recordable(None, {"a": "1"}) == {"a": "[not recorded]"}


def test_load_spec_reads_metadata_and_cell() -> None:
    spec = load_spec(NOTEBOOKS / "destructive.ipynb")
    assert spec.name == "destructive" and spec.destructive and spec.title == "A destructive step"
    assert {"environment", "apply", "confirm"} <= set(spec.params)
    d = spec.to_dict()
    assert d["destructive"] is True and d["parameters"][0]["name"] == "environment"
    assert not load_spec(NOTEBOOKS / "succeed.ipynb").destructive


def test_load_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such notebook"):
        load_spec(tmp_path / "absent.ipynb")
    (tmp_path / "bad.ipynb").write_text("{")
    with pytest.raises(NotebookError, match="not a readable notebook"):
        load_spec(tmp_path / "bad.ipynb")
