"""Cloudflare routes: zones (``/zones``) and zone settings (``/zones/{id}/settings/{setting}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from runbooks.sandbox.emulators.cloudflare.deps import PREFIX, Auth, Backend, json_body
from runbooks.sandbox.emulators.cloudflare.envelope import ok, paged

router = APIRouter(prefix=PREFIX + "/zones")


@router.get("")
def list_zones(_: Auth, b: Backend, name: str | None = None, page: int = 1, per_page: int = 20) -> dict[str, Any]:
    return paged(b.list_zones(name, page, per_page))


@router.get("/{zone_id}")
def get_zone(_: Auth, b: Backend, zone_id: str) -> dict[str, Any]:
    return ok(b.get_zone(zone_id))


@router.get("/{zone_id}/settings/{setting_id}")
def get_setting(_: Auth, b: Backend, zone_id: str, setting_id: str) -> dict[str, Any]:
    return ok(b.get_setting(zone_id, setting_id))


@router.patch("/{zone_id}/settings/{setting_id}")
async def edit_setting(_: Auth, b: Backend, zone_id: str, setting_id: str, request: Request) -> dict[str, Any]:
    return ok(b.edit_setting(zone_id, setting_id, await json_body(request)))
