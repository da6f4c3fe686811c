"""The kernel's process tree: no core dumps, no descendant outliving the run.

The runner starts every kernel through :func:`kernel_preexec` (run in the forked child, before ``exec``):

- ``RLIMIT_CORE`` is set to 0 (soft and hard, so the kernel cannot raise it again): a kernel that crashes
  writes no core file, which would hold every secret the kernel had resolved;
- on Linux the kernel becomes a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``, kept across
  ``exec``): a descendant that daemonises (double fork, ``setsid``) is re-parented to the kernel instead of
  to init, so it stays in the kernel's process tree.

:class:`Descendants` records the kernel's descendants while the run goes on (so that even those of a
kernel that died are known) and :meth:`Descendants.stop` kills every one still alive (SIGKILL, until the
tree is empty), which the engine does before it stops the kernel, so before the run is archived and its
environment lock released. A process that leaves the tree by other means (a kernel that is not a
subreaper: not Linux, or a notebook that turns it off; a descendant started after the kernel died) is out
of reach; that is a documented limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import resource
import sys
import time
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
_LIBC: Any = None
if sys.platform.startswith("linux"):  # loaded in the runner: nothing is loaded in the forked child
    with contextlib.suppress(OSError):
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def kernel_preexec() -> None:
    """``preexec_fn`` of the kernel process: no core dumps; a subreaper on Linux (see the module doc)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Descendants:
    """The descendants of one kernel process, as seen while it ran."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.seen: dict[int, float] = {}  #: pid -> create time (a recycled pid is not ours)

    def watch(self, pid: int | None) -> None:
        self.pid = pid

    def scan(self) -> list[Any]:
        """The kernel's live descendants now (and remember them)."""
        import psutil

        if self.pid is None:
            return []
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        alive = []
        for p in kids:
            with contextlib.suppress(psutil.Error):
                if p.status() != psutil.STATUS_ZOMBIE:
                    self.seen.setdefault(p.pid, p.create_time())
                    alive.append(p)
        return alive

    def _remembered(self) -> list[Any]:
        import psutil

        out = []
        for pid, created in list(self.seen.items()):
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
        return out

    def stop(self, within: float = 3.0) -> int:
        """SIGKILL every live descendant until none is left (or ``within`` seconds); returns how many."""
        import psutil

        killed: set[int] = set()
        deadline = time.monotonic() + within
        while True:
            procs = {p.pid: p for p in [*self.scan(), *self._remembered()]}
            if not procs or time.monotonic() > deadline:
                break
            for p in procs.values():
                with contextlib.suppress(psutil.Error):
                    p.kill()
                    killed.add(p.pid)
            time.sleep(0.02)
        return len(killed)
