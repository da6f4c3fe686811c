"""mypy over the package (pyproject.toml's ``[tool.mypy]``), run by ``make test`` as this test.

As a test it runs beside the rest of the suite instead of before it: a run without mypy's cache (a fresh
clone, CI) takes about a minute of one core, most of it reading the Cloudflare SDK's types. It is marked
``first`` (tests/conftest.py starts those first: with work stealing, the test that starts last decides when the
suite ends). ``make lint`` runs mypy directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.first
@pytest.mark.slow
def test_mypy_finds_no_type_error() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"mypy (exit {out.returncode}):\n{out.stdout}{out.stderr}"
    assert "Success: no issues found" in out.stdout, out.stdout
