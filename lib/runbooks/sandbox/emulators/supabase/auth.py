"""Supabase routes: JWT signing keys (Management API) and the project's auth (JWKS, sign-in, the token's user).

- ``GET/POST /v1/projects/{ref}/config/auth/signing-keys``, ``GET/PATCH/DELETE .../signing-keys/{id}``
  (``SigningKeyResponse`` / ``SigningKeysResponse``; the status rules are :mod:`.signing_keys`');
- ``GET /auth/v1/.well-known/jwks.json``: the published public keys;
- ``POST /auth/v1/token?grant_type=password``: an access token signed by the key in use (needs an API key);
- ``GET /auth/v1/user``: the bearer token's user (needs an API key).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request

from runbooks.sandbox.emulators.supabase.deps import ApiKey, Backend, Management

router = APIRouter()
PREFIX = "/v1/projects/{ref}/config/auth/signing-keys"


@router.get(PREFIX)
def list_signing_keys(b: Management) -> dict[str, Any]:
    return b.signing_keys.list()


@router.post(PREFIX, status_code=201)
def create_signing_key(b: Management, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return b.signing_keys.create(body)


@router.get(PREFIX + "/{key_id}")
def get_signing_key(b: Management, key_id: str) -> dict[str, Any]:
    return b.signing_keys.get(key_id)


@router.patch(PREFIX + "/{key_id}")
def update_signing_key(b: Management, key_id: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return b.signing_keys.update(key_id, body)


@router.delete(PREFIX + "/{key_id}")
def remove_signing_key(b: Management, key_id: str) -> dict[str, Any]:
    return b.signing_keys.remove(key_id)


# -- the project's auth ---------------------------------------------------------------------------
@router.get("/auth/v1/.well-known/jwks.json")
def jwks(b: Backend) -> dict[str, Any]:
    return b.signing_keys.jwks()


@router.post("/auth/v1/token")
def token(_: ApiKey, b: Backend, request: Request, grant_type: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return b.sign_in(grant_type, body, issuer=str(request.base_url).rstrip("/") + "/auth/v1")


@router.get("/auth/v1/user")
def get_user(_: ApiKey, b: Backend, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return b.user_of((authorization or "")[7:].strip())
