"""Supabase twin: the project's API keys (publishable and secret) and the project API that checks them.

Management API (``Authorization: Bearer <supabase_access_token>``), shapes as in the Management API's
OpenAPI document (``ApiKeyResponse``, ``CreateApiKeyBody``):

- ``GET/POST /v1/projects/{ref}/api-keys``, ``GET/PATCH/DELETE /v1/projects/{ref}/api-keys/{id}``.
  Secret keys' values are only returned with ``?reveal=true`` (and on creation).

Project API: ``GET /rest/v1/`` answers 200 to a live key in the ``apikey`` header and 401 otherwise, so a
deleted key is refused. On start-up the twin creates one publishable and one secret key if it has none
and writes them as the sandbox secrets ``supabase_publishable_key`` / ``supabase_secret_key`` (twin
credentials the render component seeds the env group with).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Query, Request

from runbooks.sandbox.emulators.common import write_secret

SECTION = "api_keys"
ACCESS_TOKEN_SECRET = "supabase_access_token"
BOOTSTRAP_SECRETS = {"publishable": "supabase_publishable_key", "secret": "supabase_secret_key"}
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]+$")
PREFIXES = {"publishable": "sb_publishable_", "secret": "sb_secret_"}

router = APIRouter()


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ctx_of(request: Request) -> Any:
    return request.app.state.ctx


def require_management(request: Request, ref: str) -> Any:
    """Authorize a Management API call with the twin's access token and check the project ref."""
    ctx = ctx_of(request)
    token_file = ctx.args.root / "secrets" / ACCESS_TOKEN_SECRET
    expected = token_file.read_text().strip() if token_file.is_file() else None
    got = request.headers.get("authorization", "")
    if not expected or not got.startswith("Bearer ") or not hmac.compare_digest(got[7:].strip(), expected):
        raise HTTPException(401, "Unauthorized")
    project_ref = ctx.extra.get("project_ref")
    if project_ref and ref != project_ref:
        raise HTTPException(404, f"project {ref} not found")
    return ctx


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
        "hash": hashlib.sha256(value.encode()).hexdigest(),
        "secret_jwt_template": None,
        "inserted_at": t,
        "updated_at": t,
    }


def response(key: dict[str, Any], *, reveal: bool) -> dict[str, Any]:
    out = dict(key)
    if key["type"] == "secret" and not reveal:
        out["api_key"] = key["prefix"] + "·" * 8
    return out


def live_key(ctx: Any, value: str) -> dict[str, Any] | None:
    """The API key whose value is ``value``, if it exists (deleted keys do not)."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    for key in ctx.state.section(SECTION).values():
        if hmac.compare_digest(key["hash"], digest):
            return dict(key)
    return None


def on_startup(ctx: Any) -> None:
    keys = ctx.state.section(SECTION)
    if keys:
        return
    with ctx.state.update() as data:
        section = data.setdefault(SECTION, {})
        for kind in ("publishable", "secret"):
            key = new_key(kind, "default")
            section[key["id"]] = key
            write_secret(ctx.args.root, BOOTSTRAP_SECRETS[kind], key["api_key"])


@router.get("/v1/projects/{ref}/api-keys")
def list_api_keys(ref: str, request: Request, reveal: bool = False) -> list[dict[str, Any]]:
    ctx = require_management(request, ref)
    return [response(k, reveal=reveal) for k in ctx.state.section(SECTION).values()]


@router.post("/v1/projects/{ref}/api-keys", status_code=201)
def create_api_key(
    ref: str, request: Request, body: dict[str, Any] = Body(...), reveal: bool = False
) -> dict[str, Any]:
    ctx = require_management(request, ref)
    kind, name = body.get("type"), body.get("name")
    if kind not in PREFIXES:
        raise HTTPException(400, "type must be one of publishable, secret")
    if not isinstance(name, str) or not (4 <= len(name) <= 64) or not NAME_RE.match(name):
        raise HTTPException(400, "name must match ^[a-z_][a-z0-9_]+$ (4 to 64 characters)")
    if set(body) - {"type", "name", "description", "secret_jwt_template"}:
        raise HTTPException(400, f"unknown fields {sorted(set(body) - {'type', 'name', 'description'})}")
    key = new_key(kind, name, body.get("description"))
    with ctx.state.update() as data:
        data.setdefault(SECTION, {})[key["id"]] = key
    # a new key's value is shown once, on creation
    return response(key, reveal=True)


def _get(ctx: Any, key_id: str) -> dict[str, Any]:
    key = ctx.state.section(SECTION).get(key_id)
    if key is None:
        raise HTTPException(404, f"API key {key_id} not found")
    return dict(key)


@router.get("/v1/projects/{ref}/api-keys/{key_id}")
def get_api_key(ref: str, key_id: str, request: Request, reveal: bool = False) -> dict[str, Any]:
    ctx = require_management(request, ref)
    return response(_get(ctx, key_id), reveal=reveal)


@router.patch("/v1/projects/{ref}/api-keys/{key_id}")
def update_api_key(
    ref: str, key_id: str, request: Request, body: dict[str, Any] = Body(...), reveal: bool = False
) -> dict[str, Any]:
    ctx = require_management(request, ref)
    _get(ctx, key_id)
    if "name" in body and not NAME_RE.match(str(body["name"])):
        raise HTTPException(400, "name must match ^[a-z_][a-z0-9_]+$")
    with ctx.state.update() as data:
        key = data[SECTION][key_id]
        for field in ("name", "description", "secret_jwt_template"):
            if field in body:
                key[field] = body[field]
        key["updated_at"] = now()
        return response(key, reveal=reveal)


@router.delete("/v1/projects/{ref}/api-keys/{key_id}")
def delete_api_key(
    ref: str,
    key_id: str,
    request: Request,
    reveal: bool = False,
    was_compromised: bool = False,
    reason: str | None = Query(None),
) -> dict[str, Any]:
    ctx = require_management(request, ref)
    _get(ctx, key_id)
    with ctx.state.update() as data:
        key = data[SECTION].pop(key_id)
    return response(key, reveal=reveal)


@router.get("/rest/v1/")
def rest_root(request: Request) -> dict[str, Any]:
    """The project's REST API root: any live API key (publishable or secret) is accepted."""
    ctx = ctx_of(request)
    value = request.headers.get("apikey") or ""
    if not value and request.headers.get("authorization", "").startswith("Bearer "):
        value = request.headers["authorization"][7:].strip()
    key = live_key(ctx, value) if value else None
    if key is None:
        raise HTTPException(401, "Invalid API key")
    return {
        "swagger": "2.0",
        "info": {"title": "PostgREST (twin)"},
        "role": "service_role" if key["type"] == "secret" else "anon",
    }
