"""Supabase twin: backups, point-in-time recovery and restore points, on the twin's real Postgres.

- ``GET  /v1/projects/{ref}/database/backups`` (``V1BackupsResponse``): the physical base backup of the
  twin's Postgres; ``physical_backup_data`` is the PITR window: from the base backup to now.
- ``POST /v1/projects/{ref}/database/backups/restore-pitr`` (``V1RestorePitrBody``, 201): validates the
  target against the window, sets the project to ``RESTORING`` and runs
  ``runbooks.sandbox.components.postgres.recover_to`` (base backup + archived WAL up to
  ``recovery_target_time``) in a background thread; then ``ACTIVE_HEALTHY`` (or ``RESTORE_FAILED``).
- ``POST/GET /v1/projects/{ref}/database/backups/restore-point`` (``V1RestorePointResponse``): a named
  restore point, created with ``pg_create_restore_point`` on the twin's Postgres.

Fault ``pitr-disabled``: ``pitr_enabled`` is false and restore-pitr is refused.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Query, Request

from runbooks.sandbox.emulators.supabase.project import ACTIVE, RESTORE_FAILED, RESTORING, authorize

SECTION = "restores"
POINTS = "restore_points"
router = APIRouter()
_restore_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _pitr_enabled(ctx: Any) -> bool:
    return "pitr-disabled" not in ctx.args.faults


def _base_time(ctx: Any) -> datetime | None:
    from runbooks.sandbox.components.postgres import PostgresError, base_backup_time

    try:
        return base_backup_time(ctx.args.root)
    except PostgresError:
        return None


def on_startup(ctx: Any) -> None:
    ctx.state.section(SECTION)
    ctx.state.section(POINTS)


@router.get("/v1/projects/{ref}/database/backups")
def list_backups(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    base = _base_time(ctx)
    backups = (
        []
        if base is None
        else [{"id": 1, "is_physical_backup": True, "status": "COMPLETED", "inserted_at": _iso(base)}]
    )
    window: dict[str, int] = {}
    if base is not None:
        window = {
            "earliest_physical_backup_date_unix": int(base.timestamp()) + 1,
            "latest_physical_backup_date_unix": int(_now().timestamp()),
        }
    return {
        "region": ctx.extra["project"].get("region", "us-west-2"),
        "walg_enabled": True,
        "pitr_enabled": _pitr_enabled(ctx),
        "backups": backups,
        "physical_backup_data": window,
    }


def _run_restore(ctx: Any, restore_id: str, target: datetime) -> None:
    from runbooks.sandbox.components.postgres import recover_to

    t0 = time.monotonic()
    status, error = "COMPLETED", ""
    try:
        recover_to(ctx.args.root, target)
    except Exception as e:  # reported through the project's status and the restore's record
        status, error = "FAILED", f"{type(e).__name__}: {e}"
    with ctx.state.update() as data:
        data[SECTION][restore_id].update(
            status=status, error=error, finished_at=_iso(_now()), seconds=round(time.monotonic() - t0, 2)
        )
    ctx.extra["status"] = ACTIVE if status == "COMPLETED" else RESTORE_FAILED
    _restore_lock.release()


@router.post("/v1/projects/{ref}/database/backups/restore-pitr", status_code=201)
def restore_pitr(ref: str, request: Request, body: dict[str, Any] = Body(...)) -> None:
    ctx = authorize(request, ref)
    target_unix = body.get("recovery_time_target_unix")
    if not isinstance(target_unix, int) or isinstance(target_unix, bool) or target_unix < 0:
        raise HTTPException(400, "recovery_time_target_unix must be a non-negative integer (seconds since epoch)")
    if not _pitr_enabled(ctx):
        raise HTTPException(400, "point-in-time recovery is not enabled for this project")
    base = _base_time(ctx)
    now = int(_now().timestamp())
    earliest = int(base.timestamp()) + 1 if base else now
    if not earliest <= target_unix <= now:
        raise HTTPException(
            400, f"recovery_time_target_unix {target_unix} is outside the recovery window [{earliest}, {now}]"
        )
    if not _restore_lock.acquire(blocking=False):
        raise HTTPException(409, "a restore is already in progress")
    restore_id = f"pitr-{len(ctx.state.section(SECTION)) + 1}"
    target = datetime.fromtimestamp(target_unix, UTC)
    with ctx.state.update() as data:
        data[SECTION][restore_id] = {
            "id": restore_id,
            "target": _iso(target),
            "started_at": _iso(_now()),
            "status": "RUNNING",
        }
    ctx.extra["status"] = RESTORING
    threading.Thread(target=_run_restore, args=(ctx, restore_id, target), name=restore_id, daemon=True).start()


def _point_response(p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "status": p["status"], "completed_on": p.get("completed_on")}


@router.post("/v1/projects/{ref}/database/backups/restore-point", status_code=201)
def create_restore_point(ref: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    import psycopg

    ctx = authorize(request, ref)
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 20:
        raise HTTPException(400, "name must be a string of 1 to 20 characters")
    if ctx.extra["status"] != ACTIVE:
        raise HTTPException(400, f"project is {ctx.extra['status']}")
    dsn = (ctx.args.root / "secrets" / "database_url").read_text().strip()
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            lsn = str(conn.execute("select pg_create_restore_point(%s)", (name,)).fetchone()[0])  # type: ignore[index]  # one-row query: fetchone() is never None here
    except psycopg.Error as e:
        raise HTTPException(500, f"could not create restore point: {type(e).__name__}") from None
    point = {"name": name, "status": "AVAILABLE", "completed_on": _iso(_now()), "lsn": lsn}
    with ctx.state.update() as data:
        data[POINTS][name] = point
    return _point_response(point)


@router.get("/v1/projects/{ref}/database/backups/restore-point")
def get_restore_point(ref: str, request: Request, name: str | None = Query(None, max_length=20)) -> dict[str, Any]:
    ctx = authorize(request, ref)
    points = ctx.state.section(POINTS)
    if name is None:
        if not points:
            raise HTTPException(404, "no restore point")
        return _point_response(max(points.values(), key=lambda p: p["completed_on"]))
    if name not in points:
        raise HTTPException(404, f"restore point {name} not found")
    return _point_response(points[name])
