"""One twin's PostgreSQL cluster: its directories, its configuration, and its server process.

- ``<root>/postgres`` holds ``data``, ``wal_archive``, ``base`` (the base backup) and ``run`` (the socket).
  When the server runs as another user, the cluster lives in a ``runbooks-twin-pg-*`` directory under the
  system temporary directory, linked as ``<root>/postgres`` (:func:`make_cluster_dir`).
- The server listens on 127.0.0.1:<port> with password (SCRAM) auth for the superuser ``postgres``; a
  private Unix socket (mode 0700, trust) is used only by the twin itself to provision and to recover.
- WAL archiving copies every segment into ``wal_archive`` (1 MB segments, ``archive_timeout`` 1 s).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbooks.paths import sandbox_root
from runbooks.sandbox import processes
from runbooks.sandbox.component import ComponentState, SandboxContext
from runbooks.sandbox.postgres.errors import PostgresError
from runbooks.sandbox.postgres.install import SUPERUSER, chown_tree, os_user, server_bin

NAME = "postgres"
RECOVERY_CONF = "twin_recovery.conf"


@dataclass(frozen=True)
class ClusterPaths:
    dir: Path
    data: Path
    archive: Path
    base: Path
    base_info: Path
    run: Path


def paths(root: Path) -> ClusterPaths:
    base = (root / NAME).resolve()  # follows the link to an external cluster directory (see make_cluster_dir)
    return ClusterPaths(
        dir=base,
        data=base / "data",
        archive=base / "wal_archive",
        base=base / "base",
        base_info=base / "base.json",
        run=base / "run",
    )


def make_cluster_dir(root: Path, user: str | None) -> Path:
    """Create ``<root>/postgres`` (fresh) and return its real path.

    When the server runs as another user, every directory above its files must stay traversable by that
    user; a root under a private directory does not guarantee it (pytest, for one, resets its base
    temporary directory to 0700 whenever a session starts), and the twin never loosens the permissions of
    the user's directories. So the cluster then lives in a directory of its own under the system temporary
    directory, linked as ``<root>/postgres``; wiping the root removes it (``runbooks.sandbox.lifecycle``: a
    ``runbooks-twin-*`` link target belongs to the twin).
    """
    link = root / NAME
    if user is None:
        link.mkdir(parents=True, exist_ok=True)
        return link.resolve()
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    real = Path(tempfile.gettempdir()) / f"runbooks-twin-pg-{digest}"
    shutil.rmtree(real, ignore_errors=True)
    real.mkdir()
    real.chmod(0o755)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(real, target_is_directory=True)
    return real


def conf(port: int, socket_dir: Path, archive: Path) -> str:
    """What the twin appends to the template's ``postgresql.conf``."""
    archive_cmd = f'test ! -f "{archive}/%f" && cp "%p" "{archive}/%f"'
    return f"""
# --- the runbooks twin (runbooks.sandbox.postgres.cluster) ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 60
shared_buffers = '32MB'
wal_level = replica
archive_mode = on
archive_command = '{archive_cmd}'
archive_timeout = '1s'
max_wal_senders = 4
# a twin: durability against power loss is not needed, speed is
fsync = off
synchronous_commit = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
include_if_exists = '{RECOVERY_CONF}'
"""


def create(root: Path, template: Path, port: int, user: str | None) -> Path:
    """A fresh cluster for the twin under ``root`` from ``template``, configured for ``port``; returns the
    directory of its Unix socket."""
    make_cluster_dir(root, user)
    p = paths(root)
    shutil.copytree(template, p.data, symlinks=True)
    p.archive.mkdir(parents=True, exist_ok=True)
    sock = p.run
    sock.mkdir(parents=True, exist_ok=True)
    if len(str(sock / ".s.PGSQL.65535")) >= 100:  # too long for a Unix socket path
        sock = Path(tempfile.mkdtemp(prefix="runbooks-twin-pgsock-"))
    with (p.data / "postgresql.conf").open("a") as f:
        f.write(conf(port, sock, p.archive))
    p.data.chmod(0o700)
    sock.chmod(0o700)
    for d in (p.dir, p.data, p.archive, sock):
        chown_tree(d, user)
    return sock


def socket_params(extra: dict[str, Any], dbname: str = "postgres") -> dict[str, Any]:
    """psycopg connection arguments for the private socket (the component's ``extra``)."""
    return {"host": extra["socket_dir"], "port": extra["port"], "user": SUPERUSER, "dbname": dbname}


def superuser_dsn(root: Path | None = None) -> str:
    """The superuser DSN of the running twin (the secret ``database_url``)."""
    return ((root or sandbox_root()) / "secrets" / "database_url").read_text().strip()


def spawn_server(ctx: SandboxContext, data: Path) -> int:
    user = os_user()
    return ctx.spawn(
        NAME,
        [str(server_bin("postgres", user)), "-D", str(data)],
        user=user,
        group=pwd.getpwnam(user).pw_name if user else None,
        cwd=data,
    )


def health(extra: dict[str, Any], dsn: str | None) -> tuple[bool, str]:
    """Whether the server answers (through ``dsn``, else the private socket) and is out of recovery."""
    import psycopg

    try:
        conn = (
            psycopg.connect(dsn, connect_timeout=2)
            if dsn
            else psycopg.connect(**socket_params(extra), connect_timeout=2)
        )
        with conn:
            conn.execute("select 1")
            recovering = conn.execute("select pg_is_in_recovery()").fetchone()
    except (psycopg.Error, OSError) as e:
        return False, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return True, "in recovery" if recovering and recovering[0] else "accepting connections"


def stop_server(state: ComponentState, timeout: float = 15.0) -> None:
    """Fast shutdown (SIGINT to the postmaster), waiting for it to exit."""
    for pid in state.pids:
        ref = processes.identify(pid)
        if not processes.alive(ref):
            continue
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            continue
        if not processes.wait_exit(ref, timeout):
            raise PostgresError(f"postgres (pid {pid}) did not stop within {timeout:.0f}s")
