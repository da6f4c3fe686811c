"""Cloudflare routes: user API tokens (``/user/tokens``: verify, list, get, create, delete, roll)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from runbooks.sandbox.emulators.cloudflare.deps import PREFIX, Auth, Backend, json_body
from runbooks.sandbox.emulators.cloudflare.envelope import ok, paged

VALID_MESSAGE = {"code": 10000, "message": "This API Token is valid and active", "type": None}

router = APIRouter(prefix=PREFIX + "/user/tokens")


@router.get("/verify")
def verify(b: Backend, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    # any scheme: verify answers 401 (not 400) for whatever is not an active token
    return ok(b.verify((authorization or "").partition(" ")[2].strip()), messages=[VALID_MESSAGE])


@router.get("")
def list_tokens(caller: Auth, b: Backend, page: int = 1, per_page: int = 20) -> dict[str, Any]:
    return paged(b.list_tokens(caller, page, per_page))


@router.post("")
async def create_token(caller: Auth, b: Backend, request: Request) -> dict[str, Any]:
    return ok(b.create_token(caller, await json_body(request)))


@router.get("/{token_id}")
def get_token(caller: Auth, b: Backend, token_id: str) -> dict[str, Any]:
    return ok(b.get_token(caller, token_id))


@router.delete("/{token_id}")
def delete_token(caller: Auth, b: Backend, token_id: str) -> dict[str, Any]:
    return ok(b.delete_token(caller, token_id))


@router.put("/{token_id}/value")
def roll_token(caller: Auth, b: Backend, token_id: str) -> dict[str, Any]:
    return ok(b.roll_token(caller, token_id))
