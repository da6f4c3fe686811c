"""Open incidents per schedule: the object ``state/alerts/<environment>/<procedure>.json`` of the archive (a local
directory or the audit bucket) while an alert of that procedure and environment is open, so that its next
successful run sends the resolve (and only then).

The state lives in the archive's store, not on the host's disk: a Render cron job has no disk, and its next run
must still know that an incident is open. The write-once audit bucket keeps every version; closing an incident
writes a ``resolved`` record (conditional replace) instead of deleting it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbooks.archive.objects import LocalObjects, Objects

if TYPE_CHECKING:
    from runbooks.archive.stores import ArchiveStore

STATE_PREFIX = "state/alerts"
#: where the local store keeps them (``<archive>/state/alerts``)
STATE_DIR = Path(STATE_PREFIX)


def objects_of(archive: Path | str | ArchiveStore) -> Objects:
    """The conditional-object store of an archive: its own for an opened store, files under a local root."""
    if isinstance(archive, (str, Path)):
        return LocalObjects(Path(archive))
    return archive.objects


def _key(environment: str, procedure: str) -> str:
    return f"{STATE_PREFIX}/{environment}/{procedure}.json"


def get(archive_root: Path | str | ArchiveStore, environment: str, procedure: str) -> dict[str, Any] | None:
    """The open incident, or None (never opened, or resolved)."""
    stored = objects_of(archive_root).get(_key(environment, procedure))
    if stored is None:
        return None
    record: dict[str, Any] = json.loads(stored.data)
    return None if record.get("status") == "resolved" else record


def _put(objects: Objects, key: str, record: dict[str, Any]) -> None:
    data = json.dumps(record, sort_keys=True, indent=1).encode()
    for _ in range(3):  # a concurrent writer moved it: read again and write over its version
        current = objects.get(key)
        if current is None:
            if objects.create_if_absent(key, data) is not None:
                return
        elif objects.replace_if_match(key, data, current.etag) is not None:
            return


def open_incident(
    archive_root: Path | str | ArchiveStore, environment: str, procedure: str, status: str, ref: str | None
) -> None:
    objects = objects_of(archive_root)
    previous = get(archive_root, environment, procedure) or {}
    record = {
        "status": status,
        "since": previous.get("since") or datetime.now(UTC).isoformat(),
        "last": ref,
        "dedup_key": f"runbooks/{environment}/{procedure}",
    }
    _put(objects, _key(environment, procedure), record)


def close_incident(archive_root: Path | str | ArchiveStore, environment: str, procedure: str) -> None:
    objects = objects_of(archive_root)
    if get(archive_root, environment, procedure) is None:
        return
    record = {
        "status": "resolved",
        "resolved_at": datetime.now(UTC).isoformat(),
        "dedup_key": f"runbooks/{environment}/{procedure}",
    }
    _put(objects, _key(environment, procedure), record)
