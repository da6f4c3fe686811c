"""Cloudflare routes: Pages projects and their custom domains (``/accounts/{id}/pages/projects``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runbooks.sandbox.emulators.cloudflare.deps import PREFIX, Auth, Backend
from runbooks.sandbox.emulators.cloudflare.envelope import ok, paged

router = APIRouter(prefix=PREFIX + "/accounts/{account_id}/pages/projects")


@router.get("")
def list_projects(_: Auth, b: Backend, account_id: str, page: int = 1, per_page: int = 10) -> dict[str, Any]:
    return paged(b.list_projects(account_id, page, per_page))


@router.get("/{name}")
def get_project(_: Auth, b: Backend, account_id: str, name: str) -> dict[str, Any]:
    return ok(b.get_project(account_id, name))


@router.get("/{name}/domains")
def list_domains(_: Auth, b: Backend, account_id: str, name: str) -> dict[str, Any]:
    return ok(b.list_domains(account_id, name))
