"""The fault catalogue: every fault declares its catcher, the docs table is the generated one, grouping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.sandbox import faults as fault_catalogue
from runbooks.sandbox.component import Catcher, FaultSpec
from runbooks.sandbox.faults import Fault, interfere, markdown_table, twin_groups, undeclared

DOCS = Path(__file__).resolve().parents[2] / "docs" / "FAULTS.md"
TABLE = re.compile(r"<!-- faults:begin -->\n(.*?)<!-- faults:end -->", re.S)


def test_every_fault_declares_the_run_that_catches_it() -> None:
    missing = undeclared()
    assert not missing, (
        "these faults do not declare their catcher (FaultSpec(description, caught_by=(Catcher(runbook, "
        f"checks=...),)) in their component): {', '.join(missing)}"
    )


def test_the_old_plain_description_form_still_loads_but_counts_as_undeclared() -> None:
    old = fault_catalogue._fault("x-broken", "s3", "the x is broken")
    new = fault_catalogue._fault("y-broken", "s3", FaultSpec("y", (Catcher("verify-backup-posture", ("a.b",)),)))
    assert (old.description, old.declared, new.declared) == ("the x is broken", False, True)
    assert undeclared([old, new]) == ["x-broken"]
    assert "**not declared**" in markdown_table([old])


def test_docs_table_is_the_generated_one() -> None:
    found = TABLE.search(DOCS.read_text())
    assert found, f"{DOCS.name} lacks the <!-- faults:begin --> ... <!-- faults:end --> block"
    assert found.group(1) == markdown_table(), "regenerate it: runbooks sandbox faults --markdown"


def test_cli_prints_the_markdown_table_and_the_catchers() -> None:
    out = CliRunner().invoke(app, ["sandbox", "faults", "--markdown"])
    assert out.exit_code == 0 and out.output == markdown_table()
    listing = CliRunner().invoke(app, ["sandbox", "faults"], terminal_width=400)
    assert listing.exit_code == 0 and "backup.freshness" in listing.output


def test_catcher_needs_checks_or_a_refusal() -> None:
    with pytest.raises(ValueError, match="either checks"):
        Catcher("verify-backup-posture")
    with pytest.raises(ValueError, match="either checks"):
        Catcher("restore-pitr", checks=("x",), refusal="y")


def _f(name: str, *catchers: Catcher, own_twin: bool = False) -> Fault:
    return Fault(name, "c", name, catchers, own_twin=own_twin)


def test_interference() -> None:
    posture = "check-dns-posture"
    a = _f("a", Catcher(posture, ("dns.proxied@api.x",)))
    b = _f("b", Catcher(posture, ("dns.proxied@app.x",)))
    c = _f("c", Catcher(posture, ("dns.proxied",)))  # a bare id covers every subject
    refused1 = _f("r1", Catcher("restore-pitr", refusal="disabled"))
    refused2 = _f("r2", Catcher("restore-pitr", refusal="other"))
    alone = _f("alone", Catcher("rotate-keys", ("verify_services",)), own_twin=True)
    assert not interfere(a, b) and interfere(a, c) and interfere(b, c)
    assert interfere(refused1, refused2) and not interfere(refused1, a)
    assert interfere(alone, a) and interfere(a, alone)
    groups = twin_groups([a, b, c, refused1, refused2, alone, _f("uncaught")])
    assert [[f.name for f in g] for g in groups] == [["a", "b", "r1"], ["c", "r2"], ["alone"]]


def test_catalogue_groups_cover_every_caught_fault_once() -> None:
    groups = twin_groups()
    names = [f.name for g in groups for f in g]
    assert sorted(names) == sorted(f.name for f in fault_catalogue.catalogue().values() if f.caught_by)
    for g in groups:
        assert not any(interfere(x, y) for x in g for y in g if x is not y)


def test_every_fault_is_in_up_help() -> None:
    out = CliRunner().invoke(app, ["sandbox", "up", "--help"], terminal_width=200)
    assert out.exit_code == 0
    for name in fault_catalogue.catalogue():
        assert name in out.output


def test_unknown_fault_is_refused_with_the_list() -> None:
    with pytest.raises(fault_catalogue.UnknownFault) as err:
        fault_catalogue.validate(["backup-versioning-off", "no-such-fault"])
    assert "no-such-fault" in str(err.value) and "backup-versioning-off" in str(err.value)
    out = CliRunner().invoke(app, ["sandbox", "up", "--fault", "no-such-fault", "--root", "unused"])
    assert out.exit_code == 1
    assert "runtime-reads-backups" in out.output
