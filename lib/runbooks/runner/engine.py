"""Execute a parameterized notebook in memory with nbclient and report an honest outcome.

papermill's own ``execute_notebook`` saves the output notebook while the run goes on (unredacted) and
records a timeout or a dead kernel as if every cell had completed. This engine instead drives
nbclient cell by cell on a notebook that lives only in memory and classifies what happened:

- ``succeeded``; ``failed`` (an exception in a cell, even one tagged ``raises-exception``, or an error output
  shown without a raise: its index, name and message); ``refused`` (the cell raised a subclass of
  :class:`runbooks.errors.Refused`, which the kernel reports through the runner's channel: the runbook
  refused a parameter's value, an unconfirmed apply or a failed preflight before changing anything);
- ``timed_out``: the *whole run* (kernel start included) outlived ``timeout`` seconds; each cell gets
  the time left as its own timeout, and a deadline passed between cells stops the run too;
- ``kernel_died``: the kernel process went away;
- ``interrupted``: SIGINT/SIGTERM to the runner. The kernel is interrupted (KeyboardInterrupt in the
  running cell) and given a few seconds; a second signal, or no reaction, kills it. The outputs
  received so far stay in the notebook. Any number of further signals, at any moment (also while the
  kernel is being stopped), changes nothing: the run still ends ``interrupted``.

The kernel runs with ``RLIMIT_CORE=0`` and as a child subreaper; its descendants (daemons included) are
killed before the kernel is stopped (:mod:`runbooks.runner.descendants`). Outputs are capped as they are
collected (:mod:`runbooks.runner.output_cap`).

The cell where a run stopped gets an ``error`` output saying so, every code cell gets
``metadata.runbook_status`` (ok / failed / refused / timed_out / kernel_died / interrupted / not_run), and the
kernel's own stdout/stderr go to /dev/null (fd-level output reaches the notebook through ipykernel's
capture and is scrubbed with everything else). IPython's history database is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.runner.descendants import Descendants, kernel_preexec
from runbooks.runner.output_cap import OutputCaps, OutputLimiter, capped_client_class

INTERRUPT_GRACE = 5.0
#: seconds the kernel's shutdown may take once the run is over (it is killed, not asked)
SHUTDOWN_TIMEOUT = 5.0
_MIN_CELL_TIMEOUT = 0.5
_SCAN_INTERVAL = 0.5


@dataclass
class ExecutionResult:
    status: str  #: a RunStatus value
    error_kind: str | None = None
    error_message: str | None = None
    cell_index: int | None = None
    cells_run: int = 0
    signum: int | None = None  #: the signal that interrupted the run, if any
    timeline: list[dict[str, Any]] = field(default_factory=list)
    cut_cells: list[int] = field(default_factory=list)  #: cells whose output passed a cap
    descendants_stopped: int = 0  #: processes the kernel left behind, killed at the end


@dataclass
class _State:
    signum: int | None = None
    running: int | None = None  #: the cell being executed right now (for signal handling)
    current: int | None = None  #: the cell the run stopped in
    hard_stop: asyncio.TimerHandle | None = None
    forced: bool = False  #: the run task was cancelled to stop at once
    stopping: bool = False  #: the run is over; the kernel is being stopped (signals change nothing now)
    refusals_before: int = 0  #: refusals the kernel had reported when the current cell started


def _error_output(ename: str, evalue: str) -> Any:
    import nbformat

    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class Engine:
    """One execution. ``run()`` must be awaited in the runner's event loop."""

    def __init__(
        self,
        nb: Any,
        *,
        cwd: Path,
        env: dict[str, str],
        timeout: float | None,
        progress: Any = None,
        kernel_name: str | None = None,
        on_started: Callable[[], None] | None = None,
        started: float | None = None,
        pending_signal: Callable[[], int | None] | None = None,
        refusals: Callable[[], list[str]] | None = None,
        output_caps: OutputCaps | None = None,
    ) -> None:
        self.nb = nb
        self.cwd = cwd
        self.env = env
        self.timeout = timeout
        self.progress = progress
        self.kernel_name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
        self.on_started = on_started
        self.started = started  #: ``time.monotonic()`` when the run began (the timeout counts from there)
        self.pending_signal = pending_signal  #: a signal the runner received before the engine took over
        self.refusals = refusals or list  #: class names of the Refused exceptions the kernel reported
        self.limiter = OutputLimiter(output_caps or OutputCaps())
        self.descendants = Descendants()
        self._deadline: float | None = None
        self._state = _State()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- time ----------------------------------------------------------------------------------
    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    def _cell_timeout(self, cell: Any) -> float | None:
        left = self._remaining()
        return None if left is None else max(left, _MIN_CELL_TIMEOUT)

    # -- signals -------------------------------------------------------------------------------
    def _install_signals(self, client: Any) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        state = self._state

        def force() -> None:
            if state.stopping or state.forced:  # already stopping: the kernel is being killed anyway
                return
            state.forced = True
            task.cancel()

        def on_signal(signum: int) -> None:
            if state.stopping:
                return
            if state.signum is not None:  # second signal: stop now
                force()
                return
            state.signum = signum
            if state.running is not None and client.km is not None:
                self._tasks.add(loop.create_task(self._interrupt_kernel(client)))
                state.hard_stop = loop.call_later(INTERRUPT_GRACE, force)
            else:
                force()

        installed: list[tuple[int, Any]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append((sig, previous))
            except (RuntimeError, NotImplementedError, ValueError):
                pass
        if installed and self.pending_signal is not None and (pending := self.pending_signal()):
            state.signum = pending  # stops before the first cell
        return installed

    @staticmethod
    def _restore_signals(installed: list[tuple[int, Any]]) -> None:
        """Give SIGINT/SIGTERM back to the handlers they had (the runner's deferral), with no gap between:
        asyncio's ``remove_signal_handler`` alone would leave the defaults (SIGTERM kills) for a moment."""
        if not installed:
            return
        loop = asyncio.get_running_loop()
        sigs = {sig for sig, _ in installed}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            for sig, previous in installed:
                loop.remove_signal_handler(sig)
                with contextlib.suppress(TypeError, ValueError, OSError):
                    signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    async def _interrupt_kernel(self, client: Any) -> None:
        with contextlib.suppress(Exception):
            await client.km.interrupt_kernel()

    def _interrupt_message(self) -> str:
        name = signal.Signals(self._state.signum).name if self._state.signum else "a signal"
        return f"the runner received {name}; the kernel was stopped"

    # -- run -----------------------------------------------------------------------------------
    async def run(self) -> ExecutionResult:
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        if self.timeout is not None:
            self._deadline = (self.started if self.started is not None else time.monotonic()) + self.timeout
        remaining = self._remaining()
        client = capped_client_class()(
            self.nb,
            kernel_name=self.kernel_name,
            timeout_func=self._cell_timeout,
            startup_timeout=int(min(60.0, max(remaining, 1.0))) if remaining is not None else 60,
            resources={"metadata": {"path": str(self.cwd)}},
            extra_arguments=[
                "--HistoryManager.enabled=False",
                '--IPKernelApp.exec_lines=["import runbooks.kernel.streams as _k; '
                f'_k.install({self.limiter.caps.per_cell}, {self.limiter.caps.per_run}); del _k"]',
            ],
            shutdown_kernel="immediate",
            record_timing=True,
            allow_errors=False,
            force_raise_errors=True,  # a cell tagged raises-exception (or an allow_error_names error) fails too
            raise_on_iopub_timeout=False,
        )
        client.limiter = self.limiter
        code_cells = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code" and c.source.strip()]
        for c in self.nb.cells:
            if c.cell_type == "code":  # stale outputs in the source must not pass for this run's
                c.outputs = []
                c.execution_count = None
                c.metadata["runbook_status"] = "not_run"
        result = ExecutionResult(status="succeeded")
        installed = self._install_signals(client)
        state = self._state
        try:
            try:
                client.km = client.create_kernel_manager()
                await client.async_start_new_kernel(
                    env=self.env,
                    cwd=str(self.cwd),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=kernel_preexec,
                )
                self.descendants.watch(getattr(getattr(client.km, "provisioner", None), "pid", None))
                self._tasks.add(asyncio.get_running_loop().create_task(self._scan_descendants()))
                await client.async_start_new_kernel_client()
                if self.on_started is not None:
                    self.on_started()
                for ordinal, index in enumerate(code_cells, 1):
                    cell = self.nb.cells[index]
                    if state.signum is not None:
                        raise asyncio.CancelledError
                    left = self._remaining()
                    if left is not None and left <= 0:
                        raise CellTimeoutError(f"the run's {self.timeout:g}s timeout passed before cell {index}")
                    state.running = index
                    started = time.monotonic()
                    if self.progress is not None:
                        self.progress.cell_start(index, ordinal, cell)
                    state.current = index
                    state.refusals_before = len(self.refusals())
                    try:
                        await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                    finally:
                        state.running = None
                    shown = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
                    if shown is not None:  # an error output without a raise (e.g. showtraceback()) fails too
                        raise CellExecutionError(
                            "\n".join(shown.get("traceback") or []), shown.get("ename") or "", shown.get("evalue") or ""
                        )
                    state.current = None
                    cell.metadata["runbook_status"] = "ok"
                    result.cells_run += 1
                    if self.progress is not None:
                        self.progress.cell_end(index, ordinal, cell, "ok", time.monotonic() - started)
                    if state.signum is not None:  # the signal came while the cell was finishing
                        raise asyncio.CancelledError
            except (asyncio.CancelledError, KeyboardInterrupt):
                if state.signum is None:
                    raise
                self._stop(result, "interrupted", "Interrupted", self._interrupt_message(), state.current, code_cells)
            except CellTimeoutError:
                if state.signum is not None:
                    self._stop(
                        result, "interrupted", "Interrupted", self._interrupt_message(), state.current, code_cells
                    )
                else:
                    msg = f"the run outlived its {self.timeout:g}s timeout (whole run, kernel start included)"
                    self._stop(result, "timed_out", "Timeout", msg, state.current, code_cells)
            except DeadKernelError:
                if state.signum is not None:
                    self._stop(
                        result, "interrupted", "Interrupted", self._interrupt_message(), state.current, code_cells
                    )
                else:
                    self._stop(
                        result, "kernel_died", "DeadKernel", "the kernel process died", state.current, code_cells
                    )
            except CellExecutionError as e:
                if state.signum is not None:  # the kernel's KeyboardInterrupt, then the runner's reason
                    self._stop(
                        result, "interrupted", "Interrupted", self._interrupt_message(), state.current, code_cells
                    )
                else:
                    reported = self.refusals()[state.refusals_before :]
                    self._stop(
                        result,
                        "refused" if e.ename and e.ename in reported else "failed",
                        e.ename or "Error",
                        e.evalue or "",
                        state.current,
                        code_cells,
                        add_output=False,
                    )
            except RuntimeError as e:  # kernel start-up problems (no reply, no such kernel...)
                left = self._remaining()
                if state.signum is not None:
                    self._stop(result, "interrupted", "Interrupted", self._interrupt_message(), None, code_cells)
                elif "died" in str(e).lower():
                    self._stop(result, "kernel_died", "DeadKernel", f"the kernel died while starting: {e}", None,
                               code_cells)  # fmt: skip
                elif left is not None and left <= 0:
                    msg = f"the run outlived its {self.timeout:g}s timeout while the kernel was starting"
                    self._stop(result, "timed_out", "Timeout", msg, None, code_cells)
                else:
                    self._stop(result, "failed", type(e).__name__, f"the kernel could not start: {e}", None, code_cells)
            except Exception as e:
                if type(e).__name__ != "NoSuchKernel":
                    raise
                self._stop(
                    result, "failed", "NoSuchKernel", f"no Jupyter kernel named {self.kernel_name!r}", None, code_cells
                )
        finally:
            state.stopping = True
            result.signum = state.signum
            if state.hard_stop is not None:
                state.hard_stop.cancel()
            cleanup = asyncio.ensure_future(self._cleanup(client, result))
            while not cleanup.done():  # a cancellation requested before ``stopping`` must not cut the cleanup
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(cleanup)
            task = asyncio.current_task()
            while task is not None and task.cancelling():
                task.uncancel()
            self._restore_signals(installed)
            result.cut_cells = self.limiter.cut_cells()
        return result

    async def _scan_descendants(self) -> None:
        """Remember the kernel's descendants while it runs (those of a kernel that dies are still known)."""
        with contextlib.suppress(asyncio.CancelledError):
            while not self._state.stopping:
                self.descendants.scan()
                await asyncio.sleep(_SCAN_INTERVAL)

    def _stop(
        self,
        result: ExecutionResult,
        status: str,
        kind: str,
        message: str,
        index: int | None,
        code_cells: list[int],
        add_output: bool = True,
    ) -> None:
        result.status, result.error_kind, result.error_message, result.cell_index = status, kind, message, index
        if index is None:
            pending = [i for i in code_cells if self.nb.cells[i].metadata.get("runbook_status") == "not_run"]
            index = pending[0] if pending and status in ("timed_out", "interrupted") else None
            result.cell_index = index
        if index is not None:
            cell = self.nb.cells[index]
            cell.metadata["runbook_status"] = status
            if add_output:
                cell.outputs.append(_error_output(kind, message))
            if self.progress is not None:
                self.progress.cell_end(
                    index, code_cells.index(index) + 1 if index in code_cells else 0, cell, status, 0.0
                )

    async def _cleanup(self, client: Any, result: ExecutionResult) -> None:
        for t in list(self._tasks):
            t.cancel()
        km = client.km
        # descendants first, while the kernel (their subreaper) still holds them in its tree
        result.descendants_stopped = await asyncio.to_thread(self.descendants.stop)
        if km is None:
            return
        with contextlib.suppress(Exception):
            if client.kc is not None:
                client.kc.stop_channels()
        try:
            if await km.is_alive():
                await asyncio.wait_for(km.shutdown_kernel(now=True), SHUTDOWN_TIMEOUT)
        except Exception:
            with contextlib.suppress(Exception):
                pid = getattr(getattr(km, "provisioner", None), "pid", None)
                if pid:
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await km.cleanup_resources()
        client.kc = None
        client.km = None
        # anything that left the tree as the kernel went (known from the scans) is stopped too
        result.descendants_stopped += await asyncio.to_thread(self.descendants.stop, 1.0)
