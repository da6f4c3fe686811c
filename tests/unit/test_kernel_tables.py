"""runbooks.show's tables (runbooks.kernel.tables): what it accepts, the text and HTML layouts, no pandas."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from runbooks import redact
from runbooks.checks.base import CheckResult, to_fix
from runbooks.kernel import results, tables
from runbooks.kernel.tables import Table, as_html, as_text, table_of

CHECKS = [
    CheckResult.ok("c.one", "api", "fine"),
    CheckResult.warn("c.two", "app", "meh", "look"),
    CheckResult.fail("c.three", "ops", "bad", "fix it"),
]


def of(obj: object) -> Table:
    return table_of(obj, results.to_data)


def test_each_accepted_shape_becomes_columns_and_rows() -> None:
    assert of(CHECKS).columns == tables.CHECK_COLUMNS
    assert of(CHECKS).rows[2] == ("c.three", "ops", "FAIL", "bad", "fix it")
    assert of({"k": 1, 2: "v"}) == Table(("key", "value"), (("k", 1), ("2", "v")))
    # a column per key, in order of appearance; a missing key is an empty cell
    assert of([{"a": 1}, {"b": 2, "a": 3}]) == Table(("a", "b"), ((1, None), (3, 2)))
    assert of([1, "x"]) == Table(("value",), ((1,), ("x",)))
    assert of("one") == Table(("value",), (("one",),))
    assert of([]) == Table(("value",), ())
    frame = pd.DataFrame({"z": [1, 2], "a": ["x", "y"]})
    assert of(frame) == Table(("z", "a"), ((1, "x"), (2, "y")))


def test_check_tables_are_recognised_and_counted() -> None:
    assert of(CHECKS).checks and of(CHECKS).counts() == {"PASS": 1, "WARN": 1, "FAIL": 1}
    assert of(to_fix(CHECKS)).checks and of(to_fix(CHECKS)).counts() == {"PASS": 0, "WARN": 1, "FAIL": 1}
    assert not of([{"status": "FAIL"}]).checks  # a status alone is not a check result


def test_text_table_aligns_columns_and_cuts_long_cells() -> None:
    text = as_text(of([{"name": "a", "n": 10}, {"name": "longer", "n": None}]), heading="title")
    assert text.splitlines() == ["title", "name    n", "a       10", "longer"]
    cut = as_text(of([{"v": "x" * 300, "w": "multi\nline"}]), max_width=20).splitlines()[1]
    assert cut.startswith("x" * 17 + "...") and cut.endswith("multi line")


def test_html_table_escapes_every_cell_and_colours_statuses() -> None:
    hostile = of([{"check": "c<script>", "status": "FAIL", "evidence": '<img src=x onerror="alert(1)">'}])
    out = as_html(hostile, heading="a <b> heading")
    assert "<script>" not in out and "<img" not in out and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert out.startswith("<p><strong>a &lt;b&gt; heading</strong></p><table")
    assert f'<td style="{tables.STATUS_STYLE["FAIL"]}">FAIL</td>' in out
    # a status outside a check table is not coloured
    assert "style=" not in as_html(of([{"status": "FAIL"}]))


def test_show_scrubs_names_and_cells(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register("tables-secret-value-31", "env:TABLES")
    results.show([{"tables-secret-value-31": "x", "v": {"nested": "tables-secret-value-31"}}])
    out = capsys.readouterr().out
    assert "tables-secret-value-31" not in out and out.count("[REDACTED:env:TABLES]") == 2


def test_a_runbooks_kernel_shows_tables_without_importing_pandas() -> None:
    """pandas costs a kernel ~0.6 s of CPU at import: show() must not need it (measured: the test suite's
    kernels spent about 130 s of CPU importing it)."""
    code = (
        "import sys, runbooks\n"
        "from runbooks.checks import config_placement, platform_posture, dns_posture, backup_posture, split_triggers\n"
        "from runbooks.checks.base import CheckResult, to_fix\n"
        "runbooks.show([CheckResult.fail('c', 's', 'e', 'r')], title='t'); runbooks.show(to_fix([]))\n"
        "runbooks.show({'k': 'v'}); runbooks.record('r', [{'a': 1}])\n"
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
