"""Cloudflare routes: DNS records (``/zones/{id}/dns_records``: list with filters, get, create, edit,
overwrite). The query string is parsed into a :class:`~.models.RecordQuery`; the model does the rest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams

from runbooks.sandbox.emulators.cloudflare.deps import PREFIX, Auth, Backend, json_body
from runbooks.sandbox.emulators.cloudflare.envelope import ok, paged
from runbooks.sandbox.emulators.cloudflare.record_rules import RecordQuery

router = APIRouter(prefix=PREFIX + "/zones/{zone_id}/dns_records")


def record_query(q: QueryParams) -> RecordQuery:
    """Cloudflare's list filters: ``name`` (= ``name.exact``), ``name.contains|startswith|endswith``,
    ``type``, ``content`` (= ``content.exact``), ``proxied``, ``match=any|all``, ``order``, ``direction``."""
    proxied = q.get("proxied")
    return RecordQuery(
        name=q.get("name") or q.get("name.exact"),
        name_contains=q.get("name.contains"),
        name_startswith=q.get("name.startswith"),
        name_endswith=q.get("name.endswith"),
        type=q.get("type"),
        content=q.get("content") or q.get("content.exact"),
        proxied=None if proxied is None else proxied.lower() == "true",
        match_any=q.get("match") == "any",
        order=q.get("order", "type"),
        descending=q.get("direction") == "desc",
    )


@router.get("")
def list_records(_: Auth, b: Backend, zone_id: str, request: Request, page: int = 1, per_page: int = 100) -> Any:
    return paged(b.list_records(zone_id, record_query(request.query_params), page, per_page))


@router.post("")
async def create_record(_: Auth, b: Backend, zone_id: str, request: Request) -> dict[str, Any]:
    return ok(b.create_record(zone_id, await json_body(request)))


@router.get("/{record_id}")
def get_record(_: Auth, b: Backend, zone_id: str, record_id: str) -> dict[str, Any]:
    return ok(b.get_record(zone_id, record_id))


@router.patch("/{record_id}")
async def edit_record(_: Auth, b: Backend, zone_id: str, record_id: str, request: Request) -> dict[str, Any]:
    return ok(b.write_record(zone_id, record_id, await json_body(request), overwrite=False))


@router.put("/{record_id}")
async def overwrite_record(_: Auth, b: Backend, zone_id: str, record_id: str, request: Request) -> dict[str, Any]:
    return ok(b.write_record(zone_id, record_id, await json_body(request), overwrite=True))
