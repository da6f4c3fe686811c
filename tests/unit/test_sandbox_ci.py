"""CI's entry point (.ci/run -> make test): the install stamp and the exit status, on a copy of the Makefile."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from runbooks.paths import project_root

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _fake_project(
    tmp_path: Path, pytest_status: int, *, format_status: int = 0, mypy_status: int = 0, imports_status: int = 0
) -> Path:
    """A copy of the Makefile and .ci/run with a .venv whose ruff check passes, whose ``ruff format`` exits
    ``format_status``, mypy ``mypy_status``, lint-imports (the layers contract) ``imports_status`` and pytest
    ``pytest_status`` (leaving a file ``pytest-ran``)."""
    root = tmp_path / "clone"
    (root / ".ci").mkdir(parents=True)
    shutil.copy2(project_root() / "Makefile", root / "Makefile")
    shutil.copy2(project_root() / ".ci" / "run", root / ".ci" / "run")
    for name in ("requirements.txt", "pyproject.toml"):
        (root / name).write_text("")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ruff").write_text(f'#!/bin/sh\ncase "$1" in format) exit {format_status};; esac\nexit 0\n')
    (bin_dir / "mypy").write_text(f"#!/bin/sh\nexit {mypy_status}\n")
    (bin_dir / "lint-imports").write_text(f"#!/bin/sh\nexit {imports_status}\n")
    ran = root / "pytest-ran"
    (bin_dir / "python").write_text(
        f'#!/bin/sh\ncase "$*" in *pytest*) touch {ran}; exit {pytest_status};; esac\nexit 0\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    stamp = root / ".venv" / ".installed-stamp"
    stamp.touch()
    old = time.time() - 60
    for name in ("requirements.txt", "pyproject.toml"):
        os.utime(root / name, (old, old))
    return root


def _make(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(root), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("changed", ["requirements.txt", "pyproject.toml"])
def test_setup_reinstalls_when_requirements_or_pyproject_change(tmp_path: Path, changed: str) -> None:
    root = _fake_project(tmp_path, 0)
    assert _make(root, "-q", "setup").returncode == 0  # up to date: nothing to install
    time.sleep(0.01)
    (root / changed).write_text("# changed\n")
    os.utime(root / changed, (time.time() + 5, time.time() + 5))
    assert _make(root, "-q", "setup").returncode == 1  # the stamp is out of date
    plan = _make(root, "-n", "setup").stdout
    assert "pip install" in plan and "-r requirements.txt" in plan and "-e ." in plan


@pytest.mark.parametrize(("pytest_status", "ci_passes"), [(0, True), (1, False), (5, False)])
def test_ci_fails_unless_pytest_passes(tmp_path: Path, pytest_status: int, ci_passes: bool) -> None:
    root = _fake_project(tmp_path, pytest_status)
    out = subprocess.run([str(root / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert (out.returncode == 0) is ci_passes, out.stdout + out.stderr


@pytest.mark.parametrize(("format_status", "imports_status"), [(1, 0), (0, 1)])
def test_ci_fails_on_unformatted_code_or_broken_layers_before_pytest(
    tmp_path: Path, format_status: int, imports_status: int
) -> None:
    root = _fake_project(tmp_path, 0, format_status=format_status, imports_status=imports_status)
    out = subprocess.run([str(root / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout + out.stderr
    assert not (root / "pytest-ran").exists()  # the suite does not run on a tree that fails them


def test_type_errors_fail_make_lint_and_make_test_leaves_mypy_to_the_suite(tmp_path: Path) -> None:
    """mypy runs inside the suite under `make test` (tests/unit/test_types.py, beside the other tests), and on
    its own under `make lint`."""
    root = _fake_project(tmp_path, 0, mypy_status=1)
    assert _make(root, "lint").returncode != 0
    assert "mypy" not in _make(root, "-n", "test").stdout.replace("# mypy", "")
    assert subprocess.run([str(root / ".ci" / "run")], capture_output=True, timeout=60).returncode == 0
