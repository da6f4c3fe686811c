"""The Supabase twin's database side: what the state model asks of the twin's real Postgres.

:class:`Database` is the interface the model uses (a fake in the model's unit tests); :class:`TwinDatabase`
implements it on the running twin (its DSN is the sandbox secret ``database_url``; base backups and
point-in-time recovery come from :mod:`runbooks.sandbox.postgres.pitr`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from runbooks.sandbox.emulators.supabase.errors import SupabaseError


class Database(Protocol):
    def connected(self, timeout_ms: int) -> tuple[bool, str]:
        """Whether the database answers and is out of recovery; (False, why) otherwise."""
        ...

    def base_backup_time(self) -> datetime | None:
        """When the physical base backup (the start of the PITR window) was taken; None without one."""
        ...

    def recover_to(self, target: datetime) -> None:
        """A point-in-time recovery to ``target`` (raises on failure)."""
        ...

    def create_restore_point(self, name: str) -> str:
        """A named restore point; returns its LSN (raises :class:`SupabaseError` on failure)."""
        ...


class TwinDatabase:
    """The twin's Postgres under the sandbox root ``root``."""

    def __init__(self, root: Path):
        self.root = root

    def _dsn(self) -> str | None:
        f = self.root / "secrets" / "database_url"
        return f.read_text().strip() if f.is_file() else None

    def connected(self, timeout_ms: int) -> tuple[bool, str]:
        import psycopg

        dsn = self._dsn()
        if dsn is None:
            return False, "no database configured"
        try:
            with psycopg.connect(dsn, connect_timeout=max(1, timeout_ms // 1000)) as conn:
                conn.execute("select 1")
                if conn.execute("select pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]  # one-row query: fetchone() is never None here
                    return False, "database is in recovery"
        except (psycopg.Error, OSError) as e:
            return False, type(e).__name__
        return True, ""

    def base_backup_time(self) -> datetime | None:
        from runbooks.sandbox.postgres.install import PostgresError
        from runbooks.sandbox.postgres.pitr import base_backup_time

        try:
            return base_backup_time(self.root)
        except PostgresError:
            return None

    def recover_to(self, target: datetime) -> None:
        from runbooks.sandbox.postgres.pitr import recover_to

        recover_to(self.root, target)

    def create_restore_point(self, name: str) -> str:
        import psycopg

        dsn = (self.root / "secrets" / "database_url").read_text().strip()
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("select pg_create_restore_point(%s)", (name,)).fetchone()
        except psycopg.Error as e:
            raise SupabaseError(500, f"could not create restore point: {type(e).__name__}") from None
        return str(row[0]) if row else ""
