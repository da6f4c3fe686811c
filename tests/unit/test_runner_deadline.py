"""--timeout bounds the whole run, scrubbing and archiving included (issue 9, item 10, the runner's part)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from typer.testing import CliRunner

from runbooks.archive.manifest import RunStatus
from runbooks.cli.main import app
from runbooks.redact import Redactor
from runbooks.runner import deadline
from runbooks.runner.run import run_procedure

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("timeout", [math.inf, math.nan, 0.0, -5.0])
def test_timeout_must_be_finite_and_positive(tmp_path: Path, timeout: float) -> None:
    marker = tmp_path / "ran"
    out = run_procedure(
        str(NOTEBOOKS / "succeed.ipynb"), params={"marker": str(marker)}, timeout=timeout, archive_root=tmp_path / "a"
    )
    assert out.status is RunStatus.REFUSED and out.exit_code == 2
    assert out.error is not None and "--timeout must be a finite positive number" in out.error.message
    assert not marker.exists()  # refused before any kernel started


@pytest.mark.parametrize("given", ["inf", "nan", "0", "-1"])
def test_cli_refuses_a_timeout_that_bounds_nothing(tmp_path: Path, given: str) -> None:
    result = CliRunner().invoke(
        app, ["run", str(NOTEBOOKS / "succeed.ipynb"), "--timeout", given, "--archive", str(tmp_path / "a")]
    )
    assert result.exit_code == 2, result.output


def test_a_credential_flood_ends_within_the_timeout_plus_the_grace(tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = run_procedure(
        str(NOTEBOOKS / "hostile.ipynb"), params={"action": "flood_secrets"}, timeout=10, archive_root=tmp_path / "a"
    )
    elapsed = time.monotonic() - t0
    assert out.status is RunStatus.TIMED_OUT and out.exit_code == 3
    assert elapsed < 10 + deadline.DEADLINE_GRACE, f"{elapsed:.1f}s"
    assert out.run_dir is not None
    assert "AKIA" not in (out.run_dir / "notebook.ipynb").read_text()


class _SlowRedactor(Redactor):
    """Scrubbing that outlives any budget (as a pathological input could)."""

    def scrub_notebook(self, nb: Any) -> Any:
        time.sleep(3)
        return super().scrub_notebook(nb)


def test_scrubbing_past_the_budget_records_the_notebook_without_outputs() -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('x')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="output " * 1000)]
    nb.cells.append(cell)
    slow = _SlowRedactor()
    t0 = time.monotonic()
    assert deadline.scrub_within(nb, slow, 0.5) is None
    assert time.monotonic() - t0 < 2
    body = json.loads(deadline.without_outputs(nb, slow))
    (out,) = body["cells"][0]["outputs"]
    assert "outputs not archived" in "".join(out["text"]) and "output output" not in json.dumps(body)
    assert "".join(body["cells"][0]["source"]) == "print('x')"
