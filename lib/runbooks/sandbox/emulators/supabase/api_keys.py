"""The project's API keys (publishable and secret), without HTTP: create, list, get, update, delete, and
the look-up by value the project API authenticates with. A secret key's value is masked unless revealed
(and answered once, on creation); a deleted key no longer authenticates."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from typing import Any

from runbooks.sandbox.emulators.common import JsonState
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.values import API_KEYS, now, request_object

PREFIXES = {"publishable": "sb_publishable_", "secret": "sb_secret_"}
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]+$")
FIELDS = {"type", "name", "description", "secret_jwt_template"}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_key(kind: str, name: str, description: str | None = None) -> dict[str, Any]:
    value = PREFIXES[kind] + secrets.token_urlsafe(24)
    t = now()
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "name": name,
        "description": description,
        "api_key": value,
        "prefix": value[: len(PREFIXES[kind]) + 4],
        "hash": digest(value),
        "secret_jwt_template": None,
        "inserted_at": t,
        "updated_at": t,
    }


def view(key: dict[str, Any], *, reveal: bool) -> dict[str, Any]:
    """The key as the API answers it (``ApiKeyResponse``)."""
    out = dict(key)
    if key["type"] == "secret" and not reveal:
        out["api_key"] = key["prefix"] + "·" * 8
    return out


class ApiKeys:
    """The ``api_keys`` section of the twin's state."""

    def __init__(self, state: JsonState):
        self.state = state

    def bootstrap(self) -> dict[str, str]:
        """One publishable and one secret key when there are none; returns type -> value of those made."""
        made: dict[str, str] = {}
        with self.state.update() as data:
            section = data.setdefault(API_KEYS, {})
            if not section:
                for kind in ("publishable", "secret"):
                    key = new_key(kind, "default")
                    section[key["id"]] = key
                    made[kind] = key["api_key"]
        return made

    def live(self, value: str) -> dict[str, Any] | None:
        """The key whose value is ``value``, if it exists (deleted keys do not)."""
        d = digest(value)
        for key in self.state.section(API_KEYS).values():
            if hmac.compare_digest(key["hash"], d):
                return dict(key)
        return None

    def _get(self, key_id: str) -> dict[str, Any]:
        key = self.state.section(API_KEYS).get(key_id)
        if key is None:
            raise SupabaseError(404, f"API key {key_id} not found")
        return dict(key)

    def list(self, *, reveal: bool) -> list[dict[str, Any]]:
        return [view(k, reveal=reveal) for k in self.state.section(API_KEYS).values()]

    def create(self, body: Any) -> dict[str, Any]:
        """A new key (``CreateApiKeyBody``); its value is answered once, here."""
        body = request_object(body)
        kind, name = body.get("type"), body.get("name")
        if kind not in PREFIXES:
            raise SupabaseError(400, "type must be one of publishable, secret")
        if not isinstance(name, str) or not (4 <= len(name) <= 64) or not NAME_RE.match(name):
            raise SupabaseError(400, "name must match ^[a-z_][a-z0-9_]+$ (4 to 64 characters)")
        if set(body) - FIELDS:
            raise SupabaseError(400, f"unknown fields {sorted(set(body) - FIELDS)}")
        key = new_key(kind, name, body.get("description"))
        with self.state.update() as data:
            data.setdefault(API_KEYS, {})[key["id"]] = key
        return view(key, reveal=True)

    def get(self, key_id: str, *, reveal: bool) -> dict[str, Any]:
        return view(self._get(key_id), reveal=reveal)

    def update(self, key_id: str, body: Any, *, reveal: bool) -> dict[str, Any]:
        self._get(key_id)
        body = request_object(body)
        if "name" in body and not NAME_RE.match(str(body["name"])):
            raise SupabaseError(400, "name must match ^[a-z_][a-z0-9_]+$")
        with self.state.update() as data:
            key = data[API_KEYS][key_id]
            for field in ("name", "description", "secret_jwt_template"):
                if field in body:
                    key[field] = body[field]
            key["updated_at"] = now()
            return view(key, reveal=reveal)

    def delete(self, key_id: str, *, reveal: bool) -> dict[str, Any]:
        self._get(key_id)
        with self.state.update() as data:
            key = data[API_KEYS].pop(key_id)
        return view(key, reveal=reveal)
