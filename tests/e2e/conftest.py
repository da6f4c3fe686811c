"""Fixtures of the end-to-end tests (the twin's fixtures live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary archive root, also exported as RUNBOOKS_ARCHIVE (runner, kernels, state of rotations)."""
    root = tmp_path / "runs"
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(root))
    return root
