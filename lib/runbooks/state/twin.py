"""The twin's identity: a random id given to each twin that ``runbooks sandbox up`` brings up fresh.

State kept outside the twin about it (``<archive>/state/rotate-keys/sandbox.<twin id>.json``) is keyed by
this id, so a twin that was brought down, reset or replaced never inherits the half-finished procedures
of another one: a new twin has a new id and starts clean; the old state stays on disk, unused.
``up`` of a twin that is already up keeps its id. The id is in ``<root>/state.json`` (``twin_id``).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

TWIN_ID_KEY = "twin_id"
STATE_FILE = "state.json"


def new_twin_id() -> str:
    return secrets.token_hex(8)


def twin_id(root: Path | None = None) -> str | None:
    """The id of the twin whose root is ``root`` (default: the sandbox root); None if none is recorded."""
    from runbooks import paths

    path = (root if root is not None else paths.sandbox_root()) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = data.get(TWIN_ID_KEY) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.isalnum() else None
