"""Supabase routes: the project settings verify-platform-posture reads, shaped by the Management API spec.

- ``GET /v1/projects/{ref}/billing/addons`` (``ListProjectAddonsResponse``): the PITR add-on;
- ``GET /v1/projects/{ref}/ssl-enforcement`` (``SslEnforcementResponse``);
- ``GET /v1/projects/{ref}/network-restrictions`` (``NetworkRestrictionsResponse``);
- ``GET /v1/projects/{ref}/config/auth`` (``AuthConfigResponse``: ``jwt_exp``).

The values (from the sandbox inventory, shaped by the posture faults) are the model's
(:class:`~.models.Posture`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runbooks.sandbox.emulators.supabase.deps import Management

router = APIRouter(prefix="/v1/projects/{ref}")


@router.get("/billing/addons")
def list_addons(b: Management) -> dict[str, Any]:
    return b.addons()


@router.get("/ssl-enforcement")
def ssl_enforcement(b: Management) -> dict[str, Any]:
    return b.ssl_enforcement()


@router.get("/network-restrictions")
def network_restrictions(b: Management) -> dict[str, Any]:
    return b.network_restrictions()


@router.get("/config/auth")
def auth_config(b: Management) -> dict[str, Any]:
    return b.auth_config()
