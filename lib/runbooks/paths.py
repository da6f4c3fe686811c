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


def archive_url() -> str:
    """``$RUNBOOKS_ARCHIVE`` as given when it is a URL (``s3://bucket/prefix``, ``audit:ENV``), else the local
    archive root's path (see :mod:`runbooks.archive.stores`)."""
    raw = os.environ.get(ARCHIVE_ENV) or ""
    return raw if is_url(raw) else str(archive_root())


def is_url(value: str) -> bool:
    """A URL of an archive store rather than a directory: ``scheme://...`` or ``audit:ENV``."""
    return ("://" in value and not value.startswith("file://")) or value.startswith("audit:")


def archive_root() -> Path:
    """The local archive root (``$RUNBOOKS_ARCHIVE`` when it is a directory, else ``runs/`` of the project)."""
    raw = os.environ.get(ARCHIVE_ENV) or ""
    if is_url(raw):
        raise ValueError(
            f"{ARCHIVE_ENV}={raw} is not a local directory; open it with runbooks.archive.stores.open_store()"
        )
    return Path(raw.removeprefix("file://") or project_root() / "runs").resolve()


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


def known_environments() -> list[str]:
    """Environments with an inventory file (cheap: no file is parsed)."""
    return sorted(p.stem for p in inventory_dir().glob("*.yaml"))
