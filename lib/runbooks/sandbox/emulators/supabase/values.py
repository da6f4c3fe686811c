"""What the Supabase twin's state models share: their state sections, timestamps, and the body check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbooks.sandbox.emulators.supabase.errors import SupabaseError

#: the sections of the twin's JSON state (``<root>/supabase/state.json``)
API_KEYS, SIGNING_KEYS, USERS, AUTH_CONFIG = "api_keys", "signing_keys", "auth_users", "auth_config"
RESTORES, RESTORE_POINTS = "restores", "restore_points"


def iso(t: datetime) -> str:
    """A time as the Management API writes it (UTC, ``Z``)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> str:
    return iso(datetime.now(UTC))


def request_object(body: Any) -> dict[str, Any]:
    """A request body must be a JSON object."""
    if not isinstance(body, dict):
        raise SupabaseError(400, "the body must be a JSON object")
    return body
