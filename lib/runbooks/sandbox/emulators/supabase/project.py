"""Supabase twin: the project itself — ``GET /v1/projects/{ref}`` and ``GET /v1/projects/{ref}/health``.

Shapes follow the Management API's OpenAPI document (``V1ProjectWithDatabaseResponse``,
``V1ServiceHealthResponse``). The project's facts (ref, name, region, database host and version) come
from ``<root>/supabase/project.json``, written by the supabase component before it starts the twin.
The project's status lives in ``ctx.extra["status"]``: ``ACTIVE_HEALTHY``, or ``RESTORING`` while the
backups router performs a point-in-time recovery (then the ``db`` service is ``UNHEALTHY`` too).
Service ``db`` is checked for real (a connection to the twin's Postgres); the others follow the project.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

PROJECT_FILE = "project.json"
ACCESS_TOKEN_SECRET = "supabase_access_token"
SERVICES = ("auth", "db", "db_postgres_user", "pooler", "realtime", "rest", "storage", "pg_bouncer")
ACTIVE, RESTORING, RESTORE_FAILED = "ACTIVE_HEALTHY", "RESTORING", "RESTORE_FAILED"

router = APIRouter()


def on_startup(ctx: Any) -> None:
    path = ctx.args.state_dir / PROJECT_FILE
    project = json.loads(path.read_text()) if path.is_file() else {}
    ctx.extra["project"] = project
    if project.get("ref"):
        ctx.extra["project_ref"] = project["ref"]  # the keys router checks refs against it too
    ctx.extra.setdefault("status", ACTIVE)


def authorize(request: Request, ref: str) -> Any:
    """The Management API's bearer token (the sandbox secret) and the project ref; returns the context."""
    ctx = request.app.state.ctx
    token_file = ctx.args.root / "secrets" / ACCESS_TOKEN_SECRET
    expected = token_file.read_text().strip() if token_file.is_file() else ""
    got = request.headers.get("authorization", "")
    if not expected or not got.startswith("Bearer ") or not hmac.compare_digest(got[7:].strip(), expected):
        raise HTTPException(401, "Unauthorized")
    if ref != ctx.extra.get("project_ref"):
        raise HTTPException(404, f"project {ref} not found")
    return ctx


def _db_connected(ctx: Any, timeout_ms: int) -> tuple[bool, str]:
    import psycopg

    dsn_file = ctx.args.root / "secrets" / "database_url"
    if not dsn_file.is_file():
        return False, "no database configured"
    try:
        with psycopg.connect(dsn_file.read_text().strip(), connect_timeout=max(1, timeout_ms // 1000)) as conn:
            conn.execute("select 1")
            if conn.execute("select pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]  # one-row query: fetchone() is never None here
                return False, "database is in recovery"
    except (psycopg.Error, OSError) as e:
        return False, type(e).__name__
    return True, ""


@router.get("/v1/projects/{ref}")
def get_project(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    p = ctx.extra["project"]
    return {
        "id": ref,
        "ref": ref,
        "organization_id": p.get("organization_slug", "spectral"),
        "organization_slug": p.get("organization_slug", "spectral"),
        "name": p.get("name", "spectral"),
        "region": p.get("region", "us-west-2"),
        "created_at": p.get("created_at", ""),
        "status": ctx.extra["status"],
        "database": {
            "host": p.get("db_host", "127.0.0.1"),
            "version": p.get("db_version", ""),
            "postgres_engine": "postgres",
            "release_channel": "ga",
        },
    }


@router.get("/v1/projects/{ref}/health")
def services_health(
    ref: str, request: Request, services: list[str] = Query(...), timeout_ms: int = Query(2000, ge=0, le=10000)
) -> list[dict[str, Any]]:
    ctx = authorize(request, ref)
    names = [s for item in services for s in item.split(",") if s]
    unknown = [s for s in names if s not in SERVICES]
    if unknown:
        raise HTTPException(400, f"unknown service(s) {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    project_status = ctx.extra["status"]
    out: list[dict[str, Any]] = []
    for name in names:
        error = ""
        if project_status == RESTORING:
            status, error = "COMING_UP", "project is restoring"
        elif name in ("db", "db_postgres_user", "pooler", "pg_bouncer"):
            ok, error = _db_connected(ctx, timeout_ms)
            status = ACTIVE if ok else "UNHEALTHY"
        else:
            status = ACTIVE if project_status == ACTIVE else "UNHEALTHY"
        row: dict[str, Any] = {"name": name, "healthy": status == ACTIVE, "status": status}
        if name == "auth":
            row["info"] = {"name": "GoTrue", "version": "v2.170.0", "description": "GoTrue (twin)"}
        elif name == "rest":
            row["info"] = {"db_schema": "public"}
        if error:
            row["error"] = error
        out.append(row)
    return out
