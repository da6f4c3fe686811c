"""Where things live: the project root, the archive root and the twin's state directory.

Notebooks run with their own directory as working directory, so every default is resolved from the
project root (found by walking up to this project's pyproject.toml), and every default can be
overridden by an environment variable that the runner passes to the kernel.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ARCHIVE_ENV = "RUNBOOKS_ARCHIVE"
SANDBOX_ENV = "RUNBOOKS_SANDBOX"
INVENTORY_ENV = "RUNBOOKS_INVENTORY"
NOTEBOOKS_ENV = "RUNBOOKS_NOTEBOOKS"


@cache
def project_root() -> Path:
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        py = d / "pyproject.toml"
        if py.is_file() and 'name = "spectral-runbooks"' in py.read_text(errors="replace"):
            return d
    # installed without a checkout: fall back to the package's grandparent (lib/runbooks -> repo)
    return Path(__file__).resolve().parents[2]


def archive_root() -> Path:
    return Path(os.environ.get(ARCHIVE_ENV) or project_root() / "runs").resolve()


def sandbox_root() -> Path:
    return Path(os.environ.get(SANDBOX_ENV) or project_root() / ".sandbox").resolve()


def notebooks_dir() -> Path:
    """``$RUNBOOKS_NOTEBOOKS``, else the checkout's ``notebooks/``, else the notebooks the installed package
    carries (``runbooks/notebooks`` in the wheel: a cron job or a laptop needs no checkout)."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env).resolve()
    checkout = project_root() / "notebooks"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "notebooks"


def inventory_dir() -> Path:
    env = os.environ.get(INVENTORY_ENV)
    return Path(env).resolve() if env else Path(__file__).resolve().parent / "inventory" / "data"
