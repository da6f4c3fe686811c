"""mypy over the package (pyproject.toml's ``[tool.mypy]``), run by ``make test`` as this test.

As a test it runs beside the rest of the suite, and a type error is reported with the other failures. A run
without mypy's cache (a fresh clone, CI) takes about 25 s of one core (a minute before pyproject.toml stopped it
reading the Cloudflare SDK's unused API areas), so it is marked ``first`` (tests/conftest.py starts those first:
with work stealing, the test that starts last decides when the suite ends). ``make lint`` runs mypy directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy ARGS`` in the project (its configuration: pyproject.toml)."""
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.first
@pytest.mark.slow
def test_mypy_finds_no_type_error() -> None:
    out = mypy()
    assert out.returncode == 0, f"mypy (exit {out.returncode}):\n{out.stdout}{out.stderr}"
    assert "Success: no issues found" in out.stdout, out.stdout


def test_a_type_error_fails_with_mypys_report(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('count: int = "three"\n')
    out = mypy("--cache-dir", str(tmp_path / "cache"), str(probe))
    assert out.returncode == 1 and "probe.py:1: error: Incompatible types in assignment" in out.stdout, out.stdout
