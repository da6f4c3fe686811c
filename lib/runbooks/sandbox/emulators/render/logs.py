"""The Render twin's logs API (``GET /v1/logs``): the services' timestamped log lines, filtered like Render's.

The supervisor writes each line a service prints as ``<ISO 8601 UTC> <pid> <message>``
(:mod:`runbooks.sandbox.emulators.render.supervisor`). A query names resources (service ids), optional
``text`` filters (every one must occur in the message), a time range and a direction (``backward``: newest
first); the answer has Render's shape: ``logs`` (``id``, ``timestamp``, ``message``, ``labels``), ``hasMore``,
``nextStartTime`` / ``nextEndTime``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: bytes read from the end of a service's log: the twin keeps its logs small, Render keeps a window too
TAIL_BYTES = 4 << 20


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _lines(sid: str, path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - TAIL_BYTES))
        data = f.read().decode(errors="replace")
    out = []
    for n, line in enumerate(data.splitlines()):
        stamp, _, rest = line.partition(" ")
        pid, _, message = rest.partition(" ")
        try:
            at = _time(stamp)
        except ValueError:
            continue  # a cut first line
        out.append(
            {
                "id": f"{sid}-{stamp}-{n}",
                "timestamp": stamp,
                "_at": at,
                "message": message,
                "labels": [
                    {"name": "resource", "value": sid},
                    {"name": "instance", "value": f"{sid}-{pid}"},
                    {"name": "type", "value": "app"},
                    {"name": "level", "value": "info"},
                ],
            }
        )
    return out


def query(
    paths: dict[str, Path],
    *,
    text: list[str],
    start: str | None,
    end: str | None,
    backward: bool,
    limit: int,
) -> dict[str, Any]:
    lo, hi = _time(start), _time(end)
    found = [
        x
        for sid, path in paths.items()
        for x in _lines(sid, path)
        if all(t in x["message"] for t in text) and (lo is None or x["_at"] >= lo) and (hi is None or x["_at"] <= hi)
    ]
    found.sort(key=lambda x: x["_at"], reverse=backward)
    page, more = found[:limit], len(found) > limit
    # Render always answers the window to ask for next (required by its schema): past this page, or the same
    edge = found[limit]["timestamp"] if more else (page[-1]["timestamp"] if page else None)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    first = start or (page[-1]["timestamp"] if backward and page else now)
    last = end or now
    return {
        "hasMore": more,
        "nextStartTime": first if backward else (edge or last),
        "nextEndTime": (edge or first) if backward else last,
        "logs": [{k: v for k, v in x.items() if k != "_at"} for x in page],
    }
