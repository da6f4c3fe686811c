"""What every Cloudflare router shares: the path prefix, the state model and the caller's token, the body.

These parse HTTP only; what a token may do is decided by :class:`~.models.CloudflareBackend`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError
from runbooks.sandbox.emulators.cloudflare.models import CloudflareBackend

#: served under ``/client/v4`` like api.cloudflare.com
PREFIX = "/client/v4"


def backend(request: Request) -> CloudflareBackend:
    """The state model the app was created with."""
    b: CloudflareBackend = request.app.state.backend
    return b


def bearer_value(authorization: str | None) -> str:
    """The token in an ``Authorization: Bearer <token>`` header (400 with Cloudflare's codes otherwise)."""
    if not authorization:
        raise CloudflareError(400, 6003, "Invalid request headers: missing Authorization header")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise CloudflareError(400, 6111, "Invalid format for Authorization header")
    return value.strip()


def token(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """The calling API token (a dependency of every authenticated route)."""
    return backend(request).authenticate(bearer_value(authorization))


Auth = Annotated[dict[str, Any], Depends(token)]
Backend = Annotated[CloudflareBackend, Depends(backend)]


async def json_body(request: Request) -> Any:
    """The request's decoded JSON, or None when it is not JSON (the model refuses what is not an object)."""
    try:
        return await request.json()
    except ValueError:
        return None
