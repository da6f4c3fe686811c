"""Backups, point-in-time recovery and restore points of the project, without HTTP, on the twin's real
Postgres (through a :class:`~.database.Database`).

The backups list is the physical base backup; the PITR window runs from it to now. A recovery validates
its target against the window and runs in a background thread (:attr:`Restores.thread`); ``on_status`` is
told the project's status: ``RESTORING``, then ``ACTIVE_HEALTHY`` or ``RESTORE_FAILED``. Each recovery is
recorded in the ``restores`` section, each named restore point in ``restore_points``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from runbooks.sandbox.emulators.common import JsonState
from runbooks.sandbox.emulators.supabase.database import Database
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.values import RESTORE_POINTS, RESTORES, iso, now, request_object

ACTIVE, RESTORING, RESTORE_FAILED = "ACTIVE_HEALTHY", "RESTORING", "RESTORE_FAILED"


def _point_view(p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "status": p["status"], "completed_on": p.get("completed_on")}


class Restores:
    """The ``restores`` and ``restore_points`` sections of the twin's state, and the recovery in progress."""

    def __init__(self, state: JsonState, database: Database, on_status: Callable[[str], None]):
        self.state, self.database, self.on_status = state, database, on_status
        self._running = threading.Lock()
        #: the thread of the recovery in progress (or of the last one)
        self.thread: threading.Thread | None = None
        with state.update() as data:
            data.setdefault(RESTORES, {})
            data.setdefault(RESTORE_POINTS, {})

    def backups(self, *, region: str, pitr_enabled: bool) -> dict[str, Any]:
        """``V1BackupsResponse``: the base backup and the PITR window."""
        base = self.database.base_backup_time()
        backups: list[dict[str, Any]] = []
        window: dict[str, int] = {}
        if base is not None:
            backups = [{"id": 1, "is_physical_backup": True, "status": "COMPLETED", "inserted_at": iso(base)}]
            window = {
                "earliest_physical_backup_date_unix": int(base.timestamp()) + 1,
                "latest_physical_backup_date_unix": int(time.time()),
            }
        return {
            "region": region,
            "walg_enabled": True,
            "pitr_enabled": pitr_enabled,
            "backups": backups,
            "physical_backup_data": window,
        }

    def start(self, body: Any, *, pitr_enabled: bool) -> str:
        """Start a recovery to ``recovery_time_target_unix`` (``V1RestorePitrBody``); returns its id."""
        target_unix = request_object(body).get("recovery_time_target_unix")
        if not isinstance(target_unix, int) or isinstance(target_unix, bool) or target_unix < 0:
            raise SupabaseError(400, "recovery_time_target_unix must be a non-negative integer (seconds since epoch)")
        if not pitr_enabled:
            raise SupabaseError(400, "point-in-time recovery is not enabled for this project")
        base = self.database.base_backup_time()
        latest = int(time.time())
        earliest = int(base.timestamp()) + 1 if base else latest
        if not earliest <= target_unix <= latest:
            raise SupabaseError(
                400, f"recovery_time_target_unix {target_unix} is outside the recovery window [{earliest}, {latest}]"
            )
        if not self._running.acquire(blocking=False):
            raise SupabaseError(409, "a restore is already in progress")
        restore_id = f"pitr-{len(self.state.section(RESTORES)) + 1}"
        target = datetime.fromtimestamp(target_unix, UTC)
        with self.state.update() as data:
            data[RESTORES][restore_id] = {
                "id": restore_id,
                "target": iso(target),
                "started_at": now(),
                "status": "RUNNING",
            }
        self.on_status(RESTORING)
        self.thread = threading.Thread(target=self._run, args=(restore_id, target), name=restore_id, daemon=True)
        self.thread.start()
        return restore_id

    def _run(self, restore_id: str, target: datetime) -> None:
        t0 = time.monotonic()
        status, error = "COMPLETED", ""
        try:
            self.database.recover_to(target)
        except Exception as e:  # reported through the project's status and the restore's record
            status, error = "FAILED", f"{type(e).__name__}: {e}"
        try:
            with self.state.update() as data:
                data[RESTORES][restore_id].update(
                    status=status, error=error, finished_at=now(), seconds=round(time.monotonic() - t0, 2)
                )
            self.on_status(ACTIVE if status == "COMPLETED" else RESTORE_FAILED)
        finally:
            self._running.release()

    def record(self, restore_id: str) -> dict[str, Any]:
        """A recovery's record: target, start, status, and once finished ``finished_at``, ``seconds``, ``error``."""
        r = self.state.section(RESTORES).get(restore_id)
        if r is None:
            raise SupabaseError(404, f"restore {restore_id} not found")
        return dict(r)

    def create_point(self, body: Any, *, project_status: str) -> dict[str, Any]:
        """A named restore point (``pg_create_restore_point``), while the project is healthy."""
        name = request_object(body).get("name")
        if not isinstance(name, str) or not name or len(name) > 20:
            raise SupabaseError(400, "name must be a string of 1 to 20 characters")
        if project_status != ACTIVE:
            raise SupabaseError(400, f"project is {project_status}")
        lsn = self.database.create_restore_point(name)
        point = {"name": name, "status": "AVAILABLE", "completed_on": now(), "lsn": lsn}
        with self.state.update() as data:
            data[RESTORE_POINTS][name] = point
        return _point_view(point)

    def point(self, name: str | None) -> dict[str, Any]:
        """The named restore point, or the latest one when ``name`` is None."""
        points = self.state.section(RESTORE_POINTS)
        if name is None:
            if not points:
                raise SupabaseError(404, "no restore point")
            return _point_view(max(points.values(), key=lambda p: p["completed_on"]))
        if name not in points:
            raise SupabaseError(404, f"restore point {name} not found")
        return _point_view(points[name])
