"""Supabase routes: backups, point-in-time recovery and restore points (``/v1/projects/{ref}/database/backups``).

- ``GET  .../backups`` (``V1BackupsResponse``): the base backup and the PITR window;
- ``POST .../backups/restore-pitr`` (``V1RestorePitrBody``, 201): starts a recovery (the project is
  ``RESTORING`` until it ends);
- ``POST/GET .../backups/restore-point`` (``V1RestorePointResponse``): a named restore point.

What they do is :class:`~.restores.Restores`' (through the model); fault ``pitr-disabled`` refuses restore-pitr.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from runbooks.sandbox.emulators.supabase.deps import Management

router = APIRouter(prefix="/v1/projects/{ref}/database/backups")


@router.get("")
def list_backups(b: Management) -> dict[str, Any]:
    return b.list_backups()


@router.post("/restore-pitr", status_code=201)
def restore_pitr(b: Management, body: dict[str, Any] = Body(...)) -> None:
    b.restore_pitr(body)


@router.post("/restore-point", status_code=201)
def create_restore_point(b: Management, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return b.create_restore_point(body)


@router.get("/restore-point")
def get_restore_point(b: Management, name: str | None = Query(None, max_length=20)) -> dict[str, Any]:
    return b.restores.point(name)
