"""Environment locks: one destructive run per target environment at a time.

A lock is the file ``<archive>/locks/<environment>.lock`` holding JSON: ``run_id``, ``actor``, ``since``,
``pid``, ``host`` (and the holder's process start time, to tell a recycled pid from the holder).
Acquisition, takeover and release are serialised by an OS file lock on ``locks/.guard`` (released by
the kernel if its holder dies, so it never goes stale) and the lock file is written atomically
(temporary file + rename), so a reader never sees half a lock.

- A lock held by a live process (or by another host, where liveness cannot be checked) refuses at
  once with :class:`LockHeld`, whose message names the holder.
- A lock whose holder process is dead on this host is taken over; the previous holder is returned
  in :attr:`EnvironmentLock.took_over_from` so the run's manifest records it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_GUARD = ".guard"
_GUARD_TIMEOUT = 10.0


class LockHeld(RuntimeError):
    """Another live run holds the environment's lock."""

    def __init__(self, environment: str, holder: dict[str, Any], path: Path):
        self.environment = environment
        self.holder = holder
        self.path = path
        h = holder
        where = f"pid {h.get('pid', '?')} on {h.get('host', '?')}"
        super().__init__(
            f"environment {environment!r} is locked by run {h.get('run_id', '?')} (actor {h.get('actor', '?')}, "
            f"since {h.get('since', '?')}, {where}). Wait for it to finish. If that run is certainly gone "
            f"(e.g. its host crashed), remove {path} by hand."
        )


def _proc_start(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def holder_alive(holder: dict[str, Any]) -> bool | None:
    """True/False for a holder on this host; None when it cannot be known (another host)."""
    if holder.get("host") != socket.gethostname():
        return None
    try:
        pid = int(holder.get("pid", -1))
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    import psutil

    if not psutil.pid_exists(pid):
        return False
    started = holder.get("process_started")
    now_started = _proc_start(pid)
    if started is not None and now_started is not None and abs(float(started) - now_started) > 1.0:
        return False  # the pid was recycled by another process
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _check_env_name(environment: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", environment) or environment.startswith("."):
        raise ValueError(f"invalid environment name for a lock: {environment!r}")


@dataclass
class EnvironmentLock:
    """A held lock; release it with :meth:`release` (or use it as a context manager)."""

    environment: str
    path: Path
    holder: dict[str, Any]
    acquired_at: datetime
    took_over_from: dict[str, Any] | None = None
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        if self._released:
            return
        self._released = True
        with _guard(self.path.parent):
            current = _read(self.path)
            if (
                current is not None
                and current.get("run_id") == self.holder["run_id"]
                and current.get("pid") == self.holder["pid"]
            ):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def __enter__(self) -> EnvironmentLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def _guard(locks_dir: Path) -> Any:
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(locks_dir / _GUARD), timeout=_GUARD_TIMEOUT):
            yield
    except Timeout:
        raise RuntimeError(f"could not get {locks_dir / _GUARD} within {_GUARD_TIMEOUT:.0f}s") from None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"run_id": "?", "note": "unreadable lock file"}
    return data if isinstance(data, dict) else {"run_id": "?", "note": "malformed lock file"}


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".lock-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def lock_path(locks_dir: Path, environment: str) -> Path:
    _check_env_name(environment)
    return locks_dir / f"{environment}.lock"


def read_holder(locks_dir: Path, environment: str) -> dict[str, Any] | None:
    """The current holder of ``environment``'s lock, if any."""
    return _read(lock_path(locks_dir, environment))


def acquire(locks_dir: Path, environment: str, *, run_id: str, actor: str, pid: int | None = None) -> EnvironmentLock:
    """Take ``environment``'s lock for ``run_id`` or raise :class:`LockHeld` at once."""
    path = lock_path(locks_dir, environment)
    locks_dir.mkdir(parents=True, exist_ok=True)
    pid = os.getpid() if pid is None else pid
    now = datetime.now(UTC)
    holder = {
        "run_id": run_id,
        "actor": actor,
        "since": now.isoformat(timespec="seconds"),
        "pid": pid,
        "host": socket.gethostname(),
        "process_started": _proc_start(pid),
        "environment": environment,
    }
    took_over: dict[str, Any] | None = None
    with _guard(locks_dir):
        current = _read(path)
        if current is not None:
            if holder_alive(current) is not False:
                raise LockHeld(environment, current, path)
            took_over = current
        _write_atomic(path, holder)
    return EnvironmentLock(environment, path, holder, now, took_over)
