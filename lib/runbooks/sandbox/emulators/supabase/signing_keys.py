"""The project's JWT signing keys, without HTTP (shapes of ``SigningKeyResponse`` / ``SigningKeysResponse``).

A new key is ``standby`` unless created ``in_use``; ``PATCH {"status": ...}`` follows :data:`TRANSITIONS`:
``standby -> in_use`` rotates (the key in use becomes ``previously_used``), ``previously_used -> revoked``,
``-> in_use`` (roll back) or ``-> standby``. Only a ``standby`` or ``revoked`` key can be removed. The JWKS
publishes the keys that are ``in_use``, ``previously_used`` or ``standby`` (:data:`PUBLISHED`): those verify
tokens; the key ``in_use`` signs them.
"""

from __future__ import annotations

import uuid
from typing import Any

from runbooks.sandbox.emulators.common import JsonState
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.signing import new_signing_key, public_view
from runbooks.sandbox.emulators.supabase.values import SIGNING_KEYS, now, request_object

PUBLISHED = ("in_use", "previously_used", "standby")
#: allowed status changes through PATCH (from -> {to})
TRANSITIONS: dict[str, set[str]] = {
    "standby": {"in_use"},
    "previously_used": {"revoked", "in_use", "standby"},
    "in_use": set(),
    "revoked": set(),
}


def _retire_in_use(keys: dict[str, Any]) -> None:
    """The key in use becomes ``previously_used`` (another one is about to be used)."""
    for other in keys.values():
        if other["status"] == "in_use":
            other["status"], other["updated_at"] = "previously_used", now()


class SigningKeys:
    """The ``signing_keys`` section of the twin's state."""

    def __init__(self, state: JsonState):
        self.state = state

    def bootstrap(self, *, legacy_in_use: bool = False) -> None:
        """An in-use ES256 key when there is none; with ``legacy_in_use`` (fault ``signing-key-legacy``) the
        project still signs with its legacy HS256 secret and the asymmetric key is ``standby`` (made once)."""
        with self.state.update() as data:
            keys = data.setdefault(SIGNING_KEYS, {})
            if not keys:
                key = new_signing_key("ES256", "in_use", now())
                keys[key["id"]] = key
            if legacy_in_use and not any(k.get("algorithm") == "HS256" for k in keys.values()):
                for k in keys.values():
                    if k.get("status") == "in_use":
                        k["status"] = "standby"
                t, kid = now(), str(uuid.uuid4())
                keys[kid] = {"id": kid, "algorithm": "HS256", "status": "in_use", "public_jwk": None}
                keys[kid].update(created_at=t, updated_at=t)

    def _get(self, key_id: str) -> dict[str, Any]:
        key = self.state.section(SIGNING_KEYS).get(key_id)
        if key is None:
            raise SupabaseError(404, f"signing key {key_id} not found")
        return dict(key)

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self.state.section(SIGNING_KEYS).values(), key=lambda k: k["created_at"])

    def list(self) -> dict[str, Any]:
        return {"keys": [public_view(k) for k in self._sorted()]}

    def create(self, body: Any) -> dict[str, Any]:
        body = request_object(body)
        unknown = set(body) - {"algorithm", "status", "private_jwk"}
        if unknown:
            raise SupabaseError(400, f"unknown fields {sorted(unknown)}")
        if "private_jwk" in body:
            raise SupabaseError(400, "importing a private JWK is not supported by the twin")
        status = body.get("status", "standby")
        if status not in ("standby", "in_use"):
            raise SupabaseError(400, "status must be standby or in_use")
        key = new_signing_key(str(body.get("algorithm", "")), status, now())
        with self.state.update() as data:
            section = data.setdefault(SIGNING_KEYS, {})
            if status == "in_use":
                _retire_in_use(section)
            section[key["id"]] = key
        return public_view(key)

    def get(self, key_id: str) -> dict[str, Any]:
        return public_view(self._get(key_id))

    def update(self, key_id: str, body: Any) -> dict[str, Any]:
        body = request_object(body)
        if set(body) != {"status"}:
            raise SupabaseError(400, 'the body must be exactly {"status": ...}')
        target, current = body["status"], self._get(key_id)["status"]
        if target == current:
            return self.get(key_id)
        if target not in TRANSITIONS.get(current, set()):
            raise SupabaseError(400, f"a {current} key cannot become {target}")
        with self.state.update() as data:
            if target == "in_use":
                _retire_in_use(data[SIGNING_KEYS])
            key = data[SIGNING_KEYS][key_id]
            key["status"], key["updated_at"] = target, now()
            return public_view(key)

    def remove(self, key_id: str) -> dict[str, Any]:
        status = self._get(key_id)["status"]
        if status not in ("standby", "revoked"):
            raise SupabaseError(400, f"a {status} key cannot be removed; revoke it first")
        with self.state.update() as data:
            return public_view(data[SIGNING_KEYS].pop(key_id))

    def jwks(self) -> dict[str, Any]:
        """The project's ``/.well-known/jwks.json``: the public keys of the published keys."""
        return {"keys": [k["public_jwk"] for k in self._sorted() if k["status"] in PUBLISHED]}

    def in_use(self) -> dict[str, Any]:
        """The key that signs new tokens (with its private part)."""
        key = next((k for k in self.state.section(SIGNING_KEYS).values() if k["status"] == "in_use"), None)
        if key is None:
            raise SupabaseError(500, "no signing key in use")
        return dict(key)

    def verifying(self, kid: Any) -> dict[str, Any] | None:
        """The published key ``kid`` (None when unknown, revoked or removed: its tokens are refused)."""
        key = self.state.section(SIGNING_KEYS).get(kid) if isinstance(kid, str) else None
        return dict(key) if key is not None and key["status"] in PUBLISHED else None
