"""What every Supabase router shares: the state model and the callers' credentials, parsed from HTTP.

These parse headers only; whether a credential is good is decided by :class:`~.models.SupabaseBackend`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from runbooks.sandbox.emulators.supabase.models import SupabaseBackend


def backend(request: Request) -> SupabaseBackend:
    """The state model the app was created with."""
    b: SupabaseBackend = request.app.state.backend
    return b


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" without one)."""
    value = authorization or ""
    return value[7:].strip() if value.startswith("Bearer ") else ""


def management(request: Request, ref: str, authorization: Annotated[str | None, Header()] = None) -> SupabaseBackend:
    """A Management API call on project ``ref`` (the route's path parameter), authorized by the access token."""
    b = backend(request)
    b.authorize(bearer(authorization), ref)
    return b


def api_key(request: Request, apikey: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """A project API call: the live API key of the ``apikey`` header."""
    return backend(request).api_key_of(apikey or "")


Backend = Annotated[SupabaseBackend, Depends(backend)]
Management = Annotated[SupabaseBackend, Depends(management)]
ApiKey = Annotated[dict[str, Any], Depends(api_key)]
