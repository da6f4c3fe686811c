"""Open incidents per schedule: ``<archive>/state/alerts/<environment>/<procedure>.json`` while an alert of that
procedure and environment is open, so that its next successful run sends the resolve (and only then)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_DIR = Path("state") / "alerts"


def _path(archive_root: Path, environment: str, procedure: str) -> Path:
    return Path(archive_root) / STATE_DIR / environment / f"{procedure}.json"


def get(archive_root: Path, environment: str, procedure: str) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(_path(archive_root, environment, procedure).read_text())
    except FileNotFoundError:
        return None
    return record


def open_incident(archive_root: Path, environment: str, procedure: str, status: str, ref: str | None) -> None:
    path = _path(archive_root, environment, procedure)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = get(archive_root, environment, procedure) or {}
    record = {
        "status": status,
        "since": previous.get("since") or datetime.now(UTC).isoformat(),
        "last": ref,
        "dedup_key": f"runbooks/{environment}/{procedure}",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, sort_keys=True, indent=1))
    os.replace(tmp, path)


def close_incident(archive_root: Path, environment: str, procedure: str) -> None:
    _path(archive_root, environment, procedure).unlink(missing_ok=True)
