"""The sqlite query index (``index.sqlite``) of run manifests.

Derived data only: everything in it comes from the ``run.json`` files, so it can be deleted and rebuilt
(:func:`rebuild`, ``runbooks runs reindex``). The archive upserts a row on every commit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from runbooks.archive.canonical import model_canonical_json, sha256_file
from runbooks.archive.layout import MANIFEST_NAME, as_utc, iter_run_dirs
from runbooks.archive.manifest import RunManifest

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    destructive INTEGER NOT NULL,
    error_kind TEXT,
    path TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    manifest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_procedure ON runs (procedure, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_environment ON runs (environment, started_at DESC);
"""
COLUMNS = (
    "run_id, procedure, environment, status, actor, trigger, started_at, ended_at, duration_seconds, destructive, "
    "error_kind, path, manifest_sha256"
)

INSERT_SQL = f"INSERT OR REPLACE INTO runs ({COLUMNS}, manifest) VALUES ({', '.join('?' * 14)})"


def ts_key(ts: datetime) -> str:
    """A UTC timestamp string whose lexical order is chronological order."""
    return as_utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IndexedRun(BaseModel):
    """One row of ``runs list``."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    procedure: str
    environment: str
    status: str
    actor: str
    trigger: str
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    destructive: bool
    error_kind: str | None
    path: str
    manifest_sha256: str


RowValues = tuple[str, str, str, str, str, str, str, str, float, int, str | None, str, str, str]


def row_values(manifest: RunManifest, path: str, manifest_sha256: str) -> RowValues:
    return (
        manifest.run_id,
        manifest.procedure,
        manifest.environment,
        str(manifest.status),
        manifest.actor,
        manifest.trigger,
        ts_key(manifest.started_at),
        ts_key(manifest.ended_at),
        manifest.duration_seconds,
        int(manifest.destructive),
        manifest.error.kind if manifest.error else None,
        path,
        manifest_sha256,
        model_canonical_json(manifest).decode(),
    )


class RunIndex:
    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.executescript(SCHEMA)
            with conn:
                yield conn

    # -- writing -------------------------------------------------------------------------------
    def upsert(self, manifest: RunManifest, path: str, manifest_sha256: str) -> None:
        self.insert_many([row_values(manifest, path, manifest_sha256)])

    def insert_many(self, rows: Iterable[RowValues]) -> int:
        """Bulk path (one transaction): used by rebuild, and by tests and the benchmark."""
        with self.connect() as conn:
            cur = conn.executemany(INSERT_SQL, rows)
            return cur.rowcount

    # -- reading -------------------------------------------------------------------------------
    def query(
        self,
        *,
        procedure: str | None = None,
        status: str | None = None,
        environment: str | None = None,
        actor: str | None = None,
        trigger: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[IndexedRun]:
        """Runs matching every given filter, newest first (``since`` inclusive, ``until`` exclusive, on the start)."""
        where: list[str] = []
        args: list[str | int] = []
        for col, val in (
            ("procedure", procedure),
            ("status", status),
            ("environment", environment),
            ("actor", actor),
            ("trigger", trigger),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if since is not None:
            where.append("started_at >= ?")
            args.append(ts_key(since))
        if until is not None:
            where.append("started_at < ?")
            args.append(ts_key(until))
        sql = f"SELECT {COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run_id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        if not self.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        names = [c.strip() for c in COLUMNS.split(",")]
        return [IndexedRun.model_validate(dict(zip(names, r, strict=True))) for r in rows]

    def resolve(self, prefix: str) -> list[str]:
        """Run ids starting with ``prefix`` (at most 10)."""
        if not self.exists():
            return []
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY run_id LIMIT 10", (escaped + "%",)
            ).fetchall()
        return [r[0] for r in rows]

    def manifest_json(self, run_id: str) -> str | None:
        if not self.exists():
            return None
        with self.connect() as conn:
            row = conn.execute("SELECT manifest FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def path_of(self, run_id: str) -> str | None:
        if not self.exists():
            return None
        with self.connect() as conn:
            row = conn.execute("SELECT path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def count(self) -> int:
        if not self.exists():
            return 0
        with self.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def dump(self) -> list[tuple[object, ...]]:
        """Every row, ordered by run id (to compare two indexes)."""
        if not self.exists():
            return []
        with self.connect() as conn:
            return conn.execute(f"SELECT {COLUMNS}, manifest FROM runs ORDER BY run_id").fetchall()


def scan_manifests(root: Path) -> Iterator[RowValues]:
    """Index rows read from every run directory's ``run.json`` (unreadable manifests are skipped)."""
    for rel, run_dir in iter_run_dirs(root):
        mpath = run_dir / MANIFEST_NAME
        try:
            manifest = RunManifest.model_validate_json(mpath.read_bytes())
        except (OSError, ValueError):
            continue  # verify reports it; the index only holds readable manifests
        yield row_values(manifest, rel, sha256_file(mpath))


def rebuild(root: Path, index_path: Path) -> int:
    """Rebuild the index from the manifests alone, atomically (a new file renamed over the old)."""
    tmp = index_path.with_name(f".{index_path.name}.rebuild")
    tmp.unlink(missing_ok=True)
    fresh = RunIndex(tmp)
    fresh.insert_many(scan_manifests(root))
    n = fresh.count()
    os.replace(tmp, index_path)
    return n
