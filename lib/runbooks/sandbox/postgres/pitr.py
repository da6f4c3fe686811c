"""Base backups and point-in-time recovery of the twin's PostgreSQL.

After seeding, a base backup is taken into ``<root>/postgres/base`` (:func:`take_base_backup`, its time in
``base.json``); with the WAL archive it allows a real point-in-time recovery (:func:`recover_to`): archive
the current WAL, stop the server, restore the base backup, replay WAL to the target time, promote, start.
The port and credentials stay the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbooks.paths import sandbox_root
from runbooks.sandbox import processes
from runbooks.sandbox.component import ComponentState
from runbooks.sandbox.postgres.cluster import (
    NAME,
    RECOVERY_CONF,
    health,
    paths,
    socket_params,
    spawn_server,
    stop_server,
    superuser_dsn,
)
from runbooks.sandbox.postgres.errors import PostgresError
from runbooks.sandbox.postgres.install import SUPERUSER, chown_tree, pg_bin


def _state(root: Path) -> ComponentState:
    from runbooks.sandbox.lifecycle import context_from_state

    _, states = context_from_state(root)
    if NAME not in states:
        raise PostgresError(f"{root}: the twin has no postgres component")
    return states[NAME]


def take_base_backup(root: Path | None = None, extra: dict[str, Any] | None = None) -> datetime:
    """A fresh base backup of the running twin into ``<root>/postgres/base``; returns when it was taken."""
    root = (root or sandbox_root()).resolve()
    extra = extra if extra is not None else _state(root).extra
    p = paths(root)
    tmp = p.dir / "base.tmp"
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
    shutil.rmtree(p.base, ignore_errors=True)
    tmp.rename(p.base)
    p.base.chmod(0o700)
    chown_tree(p.base, extra.get("os_user") or None)
    p.base_info.write_text(json.dumps({"taken_at": taken.isoformat()}))
    return taken


def base_backup_time(root: Path | None = None) -> datetime:
    info = paths((root or sandbox_root()).resolve()).base_info
    if not info.is_file():
        raise PostgresError(f"{info}: no base backup has been taken")
    return datetime.fromisoformat(json.loads(info.read_text())["taken_at"])


def _archive_current_wal(extra: dict[str, Any], archive: Path, timeout: float = 20.0) -> None:
    """Close the current WAL segment (after a commit that post-dates every target) and wait until archived."""
    import psycopg

    with psycopg.connect(**socket_params(extra), autocommit=True, connect_timeout=5) as conn:
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
    p = paths(root)
    if any(processes.alive(processes.identify(pid)) for pid in state.pids):
        _archive_current_wal(state.extra, p.archive)
        stop_server(state)

    old = p.dir / "data.before-recovery"
    shutil.rmtree(old, ignore_errors=True)
    p.data.rename(old)
    shutil.copytree(p.base, p.data, symlinks=True)
    (p.data / "recovery.signal").touch()
    (p.data / RECOVERY_CONF).write_text(
        f'restore_command = \'cp "{p.archive}/%f" "%p"\'\n'
        f"recovery_target_time = '{target_time.isoformat()}'\n"
        "recovery_target_action = 'promote'\n"
        "recovery_target_timeline = 'latest'\n"
    )
    p.data.chmod(0o700)
    chown_tree(p.data, state.extra.get("os_user") or None)
    pid = spawn_server(ctx, p.data)
    state.pids = [pid]
    update_component(root, state)

    ref = processes.identify(pid)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ok, last = health(state.extra, superuser_dsn(root) if state.extra.get("provisioned") else None)
        if ok and last == "accepting connections":
            break
        if not processes.alive(ref):
            raise PostgresError(f"postgres exited during recovery ({last}); see {ctx.log_path(NAME)}")
        if time.monotonic() > deadline:
            raise PostgresError(f"recovery did not finish within {timeout:.0f}s ({last}); see {ctx.log_path(NAME)}")
        time.sleep(0.1)
    (p.data / RECOVERY_CONF).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)
