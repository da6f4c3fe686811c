"""Processes of the twin: identify them safely (pid + start time) and stop whole process groups.

Every twin process is started in its own session (``SandboxContext.spawn``), so its process group id
is its pid and stopping the group also stops the children it forked (postgres backends, workers...).
A pid is only signalled while its start time matches the one recorded at ``up``: a pid reused by an
unrelated process after a crash is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    create_time: float | None  #: psutil create_time at registration; None if it was already gone

    def to_json(self) -> dict[str, float | int | None]:
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_json(cls, data: dict[str, float | int | None]) -> ProcessRef:
        ct = data.get("create_time")
        return cls(int(data["pid"] or 0), float(ct) if ct is not None else None)


def identify(pid: int) -> ProcessRef:
    try:
        return ProcessRef(pid, psutil.Process(pid).create_time())
    except psutil.Error:
        return ProcessRef(pid, None)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child (the pytest fixture spawns from its own process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(ref: ProcessRef) -> bool:
    """True if the process recorded in ``ref`` still runs (a zombie or a reused pid does not count)."""
    _reap(ref.pid)
    try:
        p = psutil.Process(ref.pid)
        if ref.create_time is not None and abs(p.create_time() - ref.create_time) > 0.5:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pid_taken(pid: int) -> bool:
    """A live (non-zombie) process has this pid."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def group_members(pgids: Iterable[int], not_before: float = 0.0) -> list[psutil.Process]:
    """Live processes whose process group is one of ``pgids`` (started at or after ``not_before``)."""
    wanted = set(pgids)
    found: list[psutil.Process] = []
    if not wanted:
        return found
    for p in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE or p.info["create_time"] < not_before - 1:
                continue
            if os.getpgid(p.pid) in wanted:
                found.append(p)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(refs: Iterable[ProcessRef], *, grace: float = 5.0, not_before: float = 0.0) -> list[int]:
    """SIGTERM each recorded process group, SIGKILL what is left after ``grace`` seconds.

    Returns the pids still alive at the end (empty when everything stopped).
    """
    refs = list(refs)
    pgids = [r.pid for r in refs if alive(r)]
    # orphans of a group whose leader already died (e.g. a crashed server's children); a pid now used
    # by another process means the group id belongs to that process's group: leave it alone
    pgids += [
        r.pid for r in refs if r.pid not in pgids and not _pid_taken(r.pid) and group_members([r.pid], not_before)
    ]
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for r in refs:
            _reap(r.pid)
        if not group_members(pgids, not_before):
            return []
        time.sleep(0.05)
    for pgid in pgids:
        _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    left = group_members(pgids, not_before)
    while left and time.monotonic() < deadline:
        for r in refs:
            _reap(r.pid)
        time.sleep(0.05)
        left = group_members(pgids, not_before)
    return [p.pid for p in left]


def wait_exit(ref: ProcessRef, timeout: float) -> bool:
    """Wait until the process is gone; True if it exited within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(ref):
            return True
        time.sleep(0.05)
    return not alive(ref)
