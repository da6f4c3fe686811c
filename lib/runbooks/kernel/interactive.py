"""Interactive applies: an apply authorised in a kernel the runner did not start becomes a run of its own.

When ``guard_apply`` authorises an apply in JupyterLab (no runner: no ``RUNBOOKS_RUN_ID``), it opens an
:class:`ApplySession`:

- a run id, and the environment's lock taken in the archive store under that id (``LockHeld`` refuses the
  apply, naming the holder);
- from then on, the code of every executed cell (the authorising cell included) and its outputs are
  captured (IPython's ``pre_run_cell``/``post_run_cell`` events; outputs as the kernel publishes them), and
  ``runbooks.record`` results are kept;
- the apply ends at :func:`end_apply` (the last cell of a destructive runbook), at the first cell that
  raises (status ``failed``), or at kernel shutdown at the latest (status ``interrupted``). Then the
  session is committed as a run with trigger ``interactive`` (actor, environment, the declared parameters
  as the notebook holds them, i.e. secret references, the cells, results, status), scrubbed as the runner
  scrubs, and the lock is released: right after the apply, not when the kernel exits.

Under the runner, :func:`end_apply` does nothing (the runner records the run and holds the lock).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TRIGGER = "interactive"
_sessions: dict[str, ApplySession] = {}  # environment -> open session of this kernel
_mutex = threading.RLock()


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return None
    return get_ipython()


def _notebook_path() -> Path | None:
    """The notebook this kernel serves, as Jupyter Server tells its kernels (``JPY_SESSION_NAME``)."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = Path.cwd() / path
    return path if path.suffix == ".ipynb" and path.is_file() else None


class _Capture:
    """Cells and their outputs, from IPython events and the kernel's published messages."""

    OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.cells: list[dict[str, Any]] = []
        self._session = getattr(getattr(ip, "kernel", None), "session", None)
        self._send: Any = None

    def start(self, current_source: str) -> None:
        self._open_cell(current_source, getattr(self.ip, "execution_count", None))
        if self._session is not None:
            self._send = self._session.send
            original = self._send

            def send(stream: Any, msg_or_type: Any, content: Any = None, *args: Any, **kwargs: Any) -> Any:
                self._observe(msg_or_type, content)
                return original(stream, msg_or_type, content, *args, **kwargs)

            self._session.send = send

    def stop(self) -> None:
        if self._session is not None and self._send is not None:
            self._session.send = self._send
            self._send = None

    def _open_cell(self, source: str, count: int | None) -> None:
        self.cells.append({"source": source, "outputs": [], "execution_count": count, "status": "ok"})

    def _observe(self, msg_or_type: Any, content: Any) -> None:
        if isinstance(msg_or_type, dict):
            msg_type = msg_or_type.get("header", {}).get("msg_type") or msg_or_type.get("msg_type")
            content = msg_or_type.get("content", content)
        else:
            msg_type = msg_or_type
        if msg_type not in self.OUTPUT_TYPES or not self.cells or not isinstance(content, dict):
            return
        import nbformat

        try:
            out = nbformat.v4.output_from_msg({"header": {"msg_type": msg_type}, "content": content})
        except (KeyError, ValueError):
            return
        self.cells[-1]["outputs"].append(out)

    def pre_run_cell(self, info: Any) -> None:
        self._open_cell(getattr(info, "raw_cell", "") or "", getattr(self.ip, "execution_count", None))

    def notebook(self) -> Any:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        for c in self.cells:
            cell = nbformat.v4.new_code_cell(c["source"])
            cell.outputs = c["outputs"]
            cell.execution_count = c["execution_count"]
            cell.metadata["runbook_status"] = c["status"]
            nb.cells.append(cell)
        return nb


class ApplySession:
    """One interactive apply: its run, its lock, what it executed (see the module docstring)."""

    def __init__(self, environment: str) -> None:
        from runbooks.runner.run import ExternalRun

        notebook = _notebook_path()
        self.environment = environment
        self.run = ExternalRun(notebook.stem if notebook else "interactive", notebook, environment, None, TRIGGER, None)
        self.t0 = time.monotonic()
        self.results: dict[str, Any] = {}
        self.lock: Any = None
        self.ip = _ipython()
        self.capture = _Capture(self.ip) if self.ip is not None else None
        self.error: tuple[str, str] | None = None
        self.outcome: Any = None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def begin(self) -> None:
        """Take the environment's lock for this run (raises LockHeld) and start capturing."""
        self.lock = self.run.store.acquire_lock(self.environment, run_id=self.run_id, actor=self.run.actor)
        if self.capture is not None and self.ip is not None:
            history = self.ip.user_ns.get("_ih") or [""]
            self.capture.start(str(history[-1]))
            self.ip.events.register("pre_run_cell", self.capture.pre_run_cell)
            self.ip.events.register("post_run_cell", self._post_run_cell)

    def _post_run_cell(self, result: Any) -> None:
        exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if exc is not None and self.capture is not None and self.capture.cells:
            self.capture.cells[-1]["status"] = "failed"
            self.error = (type(exc).__name__, str(exc))
            self.end()

    def _parameters(self) -> dict[str, Any]:
        from runbooks.kernel.results import to_data

        ns = self.ip.user_ns if self.ip is not None else {}
        return {name: to_data(ns[name]) for name in self.run.parameter_names() if name in ns}

    def end(self, interrupted: str | None = None) -> Any:
        """Commit the session as a run and release the lock (once)."""
        from runbooks.archive.manifest import LockEvent, RunError, RunStatus

        with _mutex:
            if self.outcome is not None:
                return self.outcome
            _sessions.pop(self.environment, None)
        if self.capture is not None and self.ip is not None:
            self.capture.stop()
            for event, fn in (("pre_run_cell", self.capture.pre_run_cell), ("post_run_cell", self._post_run_cell)):
                with contextlib.suppress(ValueError):
                    self.ip.events.unregister(event, fn)
        status, error = RunStatus.SUCCEEDED, None
        if self.error is not None:
            status = RunStatus.FAILED
            index = len(self.capture.cells) - 1 if self.capture is not None else None
            error = RunError(kind=self.error[0], message=self.error[1][:4000], cell_index=index)
        elif interrupted is not None:
            status, error = RunStatus.INTERRUPTED, RunError(kind="Interrupted", message=interrupted)
        nb = self.capture.notebook() if self.capture is not None else _empty_notebook()
        lock = None
        if self.lock is not None:
            lock = LockEvent(
                environment=self.environment,
                acquired_at=getattr(self.lock, "acquired_at", datetime.now(UTC)),
                took_over_from=getattr(self.lock, "took_over_from", None),
            )
        try:
            self.outcome = self.run.finish(nb, status, error, self._parameters(), lock, dict(self.results))
        finally:
            if self.lock is not None:
                self.lock.release()
        where = self.outcome.location or self.outcome.run_dir
        spooled = " (spooled: `runbooks runs sync` ships it)" if self.outcome.spooled else ""
        with contextlib.suppress(Exception):  # at kernel shutdown stdout may be gone: the record is what counts
            print(f"interactive apply recorded: run {self.run_id} ({status.value}) -> {where}{spooled}; "
                  f"lock on {self.environment!r} released")  # fmt: skip
        return self.outcome


def _empty_notebook() -> Any:
    import nbformat

    return nbformat.v4.new_notebook()


def begin(environment: str) -> ApplySession:
    """Open (or return the open) interactive apply session of ``environment`` in this kernel."""
    with _mutex:
        session = _sessions.get(environment)
        if session is not None:
            return session
        session = ApplySession(environment)
        session.begin()
        _sessions[environment] = session
    atexit.register(session.end, "the kernel shut down before the apply ended (runbooks.end_apply() not reached)")
    return session


def note_result(name: str, data: Any) -> None:
    """A ``runbooks.record`` value, for every open session of this kernel."""
    for session in list(_sessions.values()):
        session.results[name] = data


def end_apply() -> None:
    """End every open interactive apply of this kernel: commit its record and release its lock.

    The last cell of a destructive runbook calls it. Under the runner (or after a dry run) it does nothing.
    Each session prints where its record went.
    """
    for session in list(_sessions.values()):
        session.end()
