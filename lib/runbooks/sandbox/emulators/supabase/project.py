"""Supabase routes: the project itself — ``GET /v1/projects/{ref}`` (``V1ProjectWithDatabaseResponse``) and
``GET /v1/projects/{ref}/health`` (``V1ServiceHealthResponse``); the model answers both."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from runbooks.sandbox.emulators.supabase.deps import Management

router = APIRouter(prefix="/v1/projects/{ref}")


@router.get("")
def get_project(b: Management) -> dict[str, Any]:
    return b.get_project()


@router.get("/health")
def services_health(
    b: Management, services: list[str] = Query(...), timeout_ms: int = Query(2000, ge=0, le=10000)
) -> list[dict[str, Any]]:
    return b.services_health(services, timeout_ms)
