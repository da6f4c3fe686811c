"""Where runs live under an archive root: ``YYYY/MM/DD/<run_id>/`` and the names around them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

MANIFEST_NAME = "run.json"
STAGING_DIR = ".staging"
LOCKS_DIR = "locks"
LOCK_NAME = "ledger.lock"
INTENT_NAME = "commit.intent"
INDEX_NAME = "index.sqlite"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: the names of the year and of the month/day folders of a run's path (YYYY/MM/DD/run-id)
YEAR_DIR, TWO_DIGIT_DIR = re.compile(r"^[0-9]{4}$"), re.compile(r"^[0-9]{2}$")


def as_utc(ts: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def run_rel_path(run_id: str, started_at: datetime) -> str:
    day = as_utc(started_at)
    return f"{day:%Y}/{day:%m}/{day:%d}/{run_id}"


def is_safe_run_id(run_id: str) -> bool:
    return bool(_SAFE_NAME.match(run_id)) and run_id not in {".", ".."}


def check_file_name(name: str) -> PurePosixPath:
    """A run file name: relative, POSIX, no ``..``, not the manifest itself; raises ValueError."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or any(not _SAFE_NAME.match(part) for part in p.parts):
        raise ValueError(f"unsafe file name in a run: {name!r}")
    if str(p) == MANIFEST_NAME:
        raise ValueError(f"{MANIFEST_NAME} is written by the archive, not passed as a file")
    return p


def iter_run_dirs(root: Path) -> Iterator[tuple[str, Path]]:
    """Every ``YYYY/MM/DD/<name>`` directory under ``root`` as (relative POSIX path, path), sorted."""
    if not root.is_dir():
        return
    for year in sorted(p for p in root.iterdir() if p.is_dir() and YEAR_DIR.match(p.name)):
        for month in sorted(p for p in year.iterdir() if p.is_dir() and TWO_DIGIT_DIR.match(p.name)):
            for day in sorted(p for p in month.iterdir() if p.is_dir() and TWO_DIGIT_DIR.match(p.name)):
                for run in sorted(p for p in day.iterdir() if p.is_dir()):
                    yield f"{year.name}/{month.name}/{day.name}/{run.name}", run


def list_run_files(run_dir: Path) -> list[str]:
    """Relative POSIX paths of every regular file in a run directory except the manifest."""
    out = []
    for p in run_dir.rglob("*"):
        if p.is_file() or p.is_symlink():
            rel = p.relative_to(run_dir).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)
