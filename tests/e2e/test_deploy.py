"""Deployable (issue 14, item 6): the built wheel carries the runbooks, and an installation of it, outside
any checkout, lists them and runs one against the twin (what a Render cron job or an on-call laptop does).

The wheel is built from this checkout (``pip wheel``, with pip's build isolation) and installed with
``pip install --no-deps --target``: the package is installed clean, its dependencies are this environment's
(the pinned requirements.txt, as the deployment installs them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox]
PROJECT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted(p.stem for p in (PROJECT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(PROJECT), "--no-deps", "-w", str(out)], check=True, timeout=600)
    (wheel,) = out.glob("spectral_runbooks-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(Path(n).stem for n in names if n.startswith("runbooks/notebooks/")) == RUNBOOKS
    assert "runbooks/inventory/data/production.yaml" in names
    site = tmp_path_factory.mktemp("site")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    return site


def runbooks_cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "RUNBOOKS_ARCHIVE": str(cwd / "runs")}
    env.pop("RUNBOOKS_NOTEBOOKS", None)
    code = "import sys; from runbooks.cli.main import main; sys.argv[0] = 'runbooks'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_installed_package_lists_and_runs_its_runbooks(installed: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run(
        [sys.executable, "-c", "import runbooks.paths as p; print(p.__file__); print(p.notebooks_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(w.startswith(str(installed)) for w in where), where  # not this checkout

    listed = runbooks_cli(installed, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    for name in RUNBOOKS:
        assert name in listed.stdout

    ran = runbooks_cli(
        installed, tmp_path, "run", "verify-platform-posture", "--env", "sandbox", "--trigger", "schedule"
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert list((tmp_path / "runs").rglob("run.json"))

    check = runbooks_cli(installed, tmp_path, "inventory", "check", "--env", "production", "--no-secrets")
    assert check.returncode == 1 and "supabase_project_ref" in check.stdout
