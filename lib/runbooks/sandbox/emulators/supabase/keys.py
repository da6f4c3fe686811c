"""Supabase routes: the project's API keys (Management API, ``ApiKeyResponse`` / ``CreateApiKeyBody``) and the
project's REST root that checks them.

- ``GET/POST /v1/projects/{ref}/api-keys``, ``GET/PATCH/DELETE /v1/projects/{ref}/api-keys/{id}``; secret
  keys' values only with ``?reveal=true`` (and on creation);
- ``GET /rest/v1/``: 200 to a live key (``apikey`` header or bearer), 401 otherwise, so a deleted key is refused.

What they do is :class:`~.api_keys.ApiKeys`' (through the model).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query

from runbooks.sandbox.emulators.supabase.deps import Backend, Management, bearer

router = APIRouter()
PREFIX = "/v1/projects/{ref}/api-keys"


@router.get(PREFIX)
def list_api_keys(b: Management, reveal: bool = False) -> list[dict[str, Any]]:
    return b.keys.list(reveal=reveal)


@router.post(PREFIX, status_code=201)
def create_api_key(b: Management, body: dict[str, Any] = Body(...), reveal: bool = False) -> dict[str, Any]:
    return b.keys.create(body)  # ``reveal`` is accepted, as by the API: a new key's value is always answered


@router.get(PREFIX + "/{key_id}")
def get_api_key(b: Management, key_id: str, reveal: bool = False) -> dict[str, Any]:
    return b.keys.get(key_id, reveal=reveal)


@router.patch(PREFIX + "/{key_id}")
def update_api_key(
    b: Management, key_id: str, body: dict[str, Any] = Body(...), reveal: bool = False
) -> dict[str, Any]:
    return b.keys.update(key_id, body, reveal=reveal)


@router.delete(PREFIX + "/{key_id}")
def delete_api_key(
    b: Management,
    key_id: str,
    reveal: bool = False,
    was_compromised: bool = False,
    reason: str | None = Query(None),
) -> dict[str, Any]:
    return b.keys.delete(key_id, reveal=reveal)


@router.get("/rest/v1/")
def rest_root(
    b: Backend,
    apikey: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """The project's REST API root: any live API key (publishable or secret) is accepted."""
    return b.rest_root(apikey or bearer(authorization))
