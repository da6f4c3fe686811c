"""Orchestration of one run: validate, lock, execute in memory, scrub, archive.

Order of a run (nothing unredacted is ever written to disk):

1. find the notebook, read its declared parameters, validate the given ones: a problem is a
   ``refused`` run (exit code 2) and no kernel is started;
2. a destructive notebook takes its target environment's lock (a live holder: ``refused`` at once);
3. papermill injects the parameters (as given: secret references stay references) into the
   notebook *in memory*; :class:`~runbooks.runner.engine.Engine` executes it with nbclient; the kernel
   tells the runner every secret value it resolves through a private channel;
4. every string of the notebook and of the manifest is scrubbed; the redacted notebook and
   ``run.json`` are committed to the archive (the only write), then the lock is released.

Exit codes: 0 succeeded, 1 failed, 2 refused, 3 timed_out, 4 kernel_died, 130 interrupted; 75 when the
archive of record (S3) could not be reached and the run was committed to the local spool instead
(``runbooks runs sync`` ships it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbooks import paths
from runbooks.archive.manifest import LockEvent, RunError, RunManifest, RunStatus
from runbooks.runner.params import NotebookError, NotebookSpec, ParamError, spec_of, validate

if TYPE_CHECKING:
    from runbooks.archive.stores import ArchiveStore, Committed, HeldLock
    from runbooks.redact import Redactor
    from runbooks.runner.output_cap import OutputCaps

EXIT_CODES: dict[RunStatus, int] = {
    RunStatus.SUCCEEDED: 0,
    RunStatus.FAILED: 1,
    RunStatus.REFUSED: 2,
    RunStatus.TIMED_OUT: 3,
    RunStatus.KERNEL_DIED: 4,
    RunStatus.INTERRUPTED: 130,
}
#: EX_TEMPFAIL: the record is in the local spool, not yet in the archive of record (whatever the run's status)
SPOOLED_EXIT = 75
TRIGGERS = ("manual", "schedule")
NOTEBOOK_FILE = "notebook.ipynb"
_MAX_MESSAGE = 4000


@dataclass
class RunOutcome:
    status: RunStatus
    run_id: str
    run_dir: Path | None
    exit_code: int
    duration: float
    error: RunError | None = None
    location: str = ""  #: where the record is: the run directory, or its URL in the bucket
    spooled: bool = False  #: committed to the local spool (the archive of record was unreachable)
    archive_note: str = ""  #: why it was spooled
    #: what the archive did not do although the run is recorded (e.g. a full disk: the index, the head)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED


@dataclass(frozen=True)
class RunEnd:
    """What an ``on_end`` hook sees when a run has ended, before its record is committed (e.g. the alerts of a
    scheduled run). The hook returns results to add to the record; ``scrub`` redacts a text like the record."""

    run_id: str
    procedure: str
    environment: str
    trigger: str
    status: RunStatus
    error: RunError | None
    results: dict[str, Any]
    archive: ArchiveStore  #: where the run is archived (a hook keeps its own state there: no disk on Render)
    scrub: Callable[[str], str]


OnEnd = Callable[[RunEnd], dict[str, Any]]


# --- finding notebooks -------------------------------------------------------------------------------
def procedure_name(name_or_path: str | Path) -> str:
    s = str(name_or_path)
    return Path(s).stem if s.endswith(".ipynb") or os.sep in s else s


def resolve_notebook(name_or_path: str | Path) -> Path:
    """A procedure name (a notebook stem in ``notebooks/``) or a path to an ``.ipynb``."""
    s = str(name_or_path)
    if s.endswith(".ipynb") or os.sep in s:
        path = Path(s).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise NotebookError(f"{s}: no such notebook")
        return path.resolve()
    path = paths.notebooks_dir() / f"{s}.ipynb"
    if not path.is_file():
        known = ", ".join(p.stem for p in list_notebooks()) or "(none yet)"
        raise NotebookError(f"unknown procedure {s!r}; known procedures: {known} (or give a path to an .ipynb)")
    return path


def list_notebooks(directory: Path | None = None) -> list[Path]:
    d = directory or paths.notebooks_dir()
    return sorted(p for p in d.glob("*.ipynb") if not p.name.startswith("."))


# --- helpers -------------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


class _DeferSignals:
    """SIGINT/SIGTERM outside the engine are remembered, not fatal: a run always ends with its record.

    The engine installs its own handlers while the kernel runs (interrupt, then stop the kernel) and is
    told about a signal that came before it took over; after it, a signal waits for the commit.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _on(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def pending(self) -> int | None:
        return self.received

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            old = signal.signal(sig, self._on)
            self._old.setdefault(sig, old)

    def __enter__(self) -> _DeferSignals:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        # a caller with its own handler (e.g. ``runbooks demo`` bringing the twin down) still hears about it,
        # once the record is committed; with default handlers, the outcome (interrupted, 130) says it all
        received, self.received = self.received, None
        if (
            received is not None
            and callable(self._old.get(received))
            and self._old[received] not in (signal.default_int_handler,)
        ):
            signal.raise_signal(received)


class _Run:
    """State of one run_procedure call."""

    def __init__(
        self,
        name_or_path: str | Path,
        params: dict[str, Any],
        environment: str,
        timeout: float | None,
        actor: str | None,
        trigger: str,
        archive_root: Path | str | None,
        progress: bool,
        on_end: OnEnd | None = None,
        output_caps: OutputCaps | None = None,
    ) -> None:
        from runbooks.archive.stores import open_store
        from runbooks.runner import identity

        self.t0 = time.monotonic()
        self.started_at = _now()
        self.name_or_path = name_or_path
        self.given = dict(params)
        self.environment = environment
        self.timeout = timeout
        self.actor = identity.actor(actor)
        self.trigger = trigger
        self.show_progress = progress
        self.store = open_store(archive_root, environment)
        self.output_caps = output_caps
        self.procedure = procedure_name(name_or_path)
        self.run_id = self.store.new_run_id(self.procedure, self.started_at)
        self.notebook_sha = ""
        self.spec: NotebookSpec | None = None
        self.values: dict[str, Any] = {}
        self.deferred = _DeferSignals()
        self.on_end = on_end
        self._committed = False  #: archive.commit was called for this run (never retried)

    # -- manifest and commit ---------------------------------------------------------------------------
    def _manifest(
        self,
        status: RunStatus,
        error: RunError | None,
        parameters: dict[str, Any],
        lock: LockEvent | None,
        results: dict[str, Any],
        redactor: Redactor,
    ) -> RunManifest:
        from runbooks.runner import identity

        ended = _now()
        raw = {
            "run_id": self.run_id,
            "procedure": self.procedure,
            "notebook_sha256": self.notebook_sha,
            "parameters": redactor.withhold(parameters),  # a value a runbook refused is not recorded
            "environment": self.environment,
            "actor": self.actor,
            "trigger": self.trigger,
            "host": identity.host(),
            "code_version": identity.code_version(),
            "destructive": bool(self.spec and self.spec.destructive),
            "started_at": self.started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "duration_seconds": round(time.monotonic() - self.t0, 3),
            "status": status.value,
            "error": error.model_dump() if error else None,
            "lock": lock.model_dump(mode="json") if lock else None,
            "results": results,
        }
        return RunManifest.model_validate(redactor.scrub_obj(raw))

    def _outcome(self, manifest: RunManifest, committed: Committed) -> RunOutcome:
        return RunOutcome(
            manifest.status,
            self.run_id,
            committed.run_dir,
            SPOOLED_EXIT if committed.spooled else EXIT_CODES[manifest.status],
            manifest.duration_seconds,
            manifest.error,
            location=committed.location,
            spooled=committed.spooled,
            archive_note=committed.note,
            notes=list(committed.notes),
        )

    def refuse(self, message: str) -> RunOutcome:
        from runbooks.redact import Redactor, default_redactor
        from runbooks.runner.params import NOT_RECORDED, recordable

        redactor = Redactor()
        redactor.update(default_redactor())
        if self.spec is None:  # refused before the notebook was read: read it now, to judge what to record
            with contextlib.suppress(Exception):
                self._load(resolve_notebook(self.name_or_path))
        if self.environment not in paths.known_environments():  # an unvalidated value may be a pasted secret
            self.environment = NOT_RECORDED
        if self.trigger not in TRIGGERS:
            self.trigger = NOT_RECORDED
        error = RunError(kind="Refused", message=redactor.cut(message, _MAX_MESSAGE))
        manifest = self._manifest(RunStatus.REFUSED, error, recordable(self.spec, self.given), None, {}, redactor)
        return self._outcome(manifest, self.store.commit(manifest, {}))

    # -- preparation -------------------------------------------------------------------------------------
    def prepare(self) -> tuple[Path, str]:
        """Find and read the notebook, validate parameters; raises NotebookError/ParamError."""
        if self.trigger not in TRIGGERS:
            raise ParamError(f"--trigger must be one of {', '.join(TRIGGERS)} (the value given is not repeated here)")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float) and math.isfinite(self.timeout) and self.timeout > 0
        ):
            raise ParamError(
                f"--timeout must be a finite positive number of seconds (got {self.timeout!r}); "
                "give e.g. --timeout 600, or leave it out for no timeout"
            )
        path = resolve_notebook(self.name_or_path)
        data, spec = self._load(path)
        if "environment" in self.given and str(self.given["environment"]) != self.environment:
            raise ParamError("parameter 'environment' contradicts the run's environment (--env); give it once (--env)")
        self.values = validate(spec, self.given)
        if "environment" in spec.params:
            self.values["environment"] = validate(spec, {"environment": self.environment})["environment"]
        else:
            if self.environment not in paths.known_environments():
                raise ParamError(
                    f"--env: no such environment (the value given is not repeated here); "
                    f"choose one of {', '.join(paths.known_environments())}"
                )
        return path, data.decode("utf-8")

    def _load(self, path: Path) -> tuple[bytes, NotebookSpec]:
        """Read the notebook: its sha256 (recorded even when the run is refused) and its spec."""
        data = path.read_bytes()
        self.notebook_sha = hashlib.sha256(data).hexdigest()
        try:
            nb = json.loads(data)
        except ValueError:
            raise NotebookError(f"{path.name}: not valid notebook JSON") from None
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise NotebookError(f"{path.name}: not a notebook (no cells)")
        self.spec = spec = spec_of(nb, path)
        return data, spec

    # -- execution -----------------------------------------------------------------------------------------
    def execute(self, path: Path, text: str) -> RunOutcome:
        from runbooks.archive import lock as envlock

        assert self.spec is not None
        self.store.check_writable()  # an unusable archive fails before a kernel starts
        held: HeldLock | None = None
        if self.spec.destructive:
            try:
                held = self.store.acquire_lock(self.environment, run_id=self.run_id, actor=self.actor)
            except envlock.LockHeld as e:
                return self.refuse(str(e))
        try:
            return self._execute_locked(path, text, held)
        finally:
            if held is not None:
                held.release()

    def _kernel_env(self, channel_env: dict[str, str], held: Any) -> dict[str, str]:
        from runbooks.channel import CHANNEL_ENV, LOCKED_ENV, RUN_ID_ENV, TOKEN_ENV
        from runbooks.runner.identity import ACTOR_ENV

        # PYTEST_CURRENT_TEST turns off ipykernel's capture of fd-level output: kernels behave the same under tests
        drop = (LOCKED_ENV, CHANNEL_ENV, TOKEN_ENV, "PYTEST_CURRENT_TEST")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(channel_env)
        env[paths.ARCHIVE_ENV] = self.store.kernel_archive()
        env[paths.SANDBOX_ENV] = str(paths.sandbox_root())
        env[RUN_ID_ENV] = self.run_id
        env[ACTOR_ENV] = self.actor
        env["RUNBOOKS_ENVIRONMENT"] = self.environment
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        env["JPY_PARENT_PID"] = str(os.getpid())  # ipykernel exits if the runner dies (even by SIGKILL)
        if held is not None:
            env[LOCKED_ENV] = self.environment
        return env

    def _execute_locked(self, path: Path, text: str, held: Any) -> RunOutcome:
        _skip_unused_heavy_imports()
        import nbformat
        from papermill.parameterize import parameterize_notebook

        from runbooks.redact import Redactor, default_redactor
        from runbooks.runner.channel import ChannelServer
        from runbooks.runner.engine import Engine, ExecutionResult
        from runbooks.runner.progress import Progress

        assert self.spec is not None
        redactor = Redactor()
        redactor.update(default_redactor())
        nb = nbformat.reads(text, as_version=4)
        kernelspec = nb.metadata.get("kernelspec", {})
        kernel_name = kernelspec.get("name") or "python3"
        nb.metadata.setdefault("papermill", {})
        for cell in nb.cells:  # papermill expects tags on every cell
            cell.metadata.setdefault("tags", [])
        if self.values:  # papermill's injected cell: the parameters as given (references stay references)
            nb = parameterize_notebook(
                nb, dict(self.values), kernel_name=kernel_name, language=kernelspec.get("language") or "python"
            )
        progress = Progress(self.show_progress, scrub=redactor.scrub)
        server = ChannelServer(on_secret=redactor.register)
        lock_event = (
            LockEvent(environment=self.environment, acquired_at=held.acquired_at, took_over_from=held.took_over_from)
            if held is not None
            else None
        )

        async def go() -> Any:
            await server.start()
            try:
                engine = Engine(
                    nb,
                    cwd=path.parent,
                    env=self._kernel_env(server.env(), held),
                    timeout=self.timeout,
                    progress=progress,
                    kernel_name=kernel_name,
                    started=self.t0,
                    pending_signal=self.deferred.pending,
                    refusals=lambda: server.refusals,
                    output_caps=self.output_caps,
                )
                return await engine.run()
            finally:
                await server.stop()

        code_cells = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())
        self._committed = False
        try:
            if self.deferred.received:  # stopped before a kernel was started
                name = signal.Signals(self.deferred.received).name
                msg = f"the runner received {name} before the kernel started; nothing ran"
                result = ExecutionResult("interrupted", "Interrupted", msg)
            else:
                progress.start(self.procedure, self.run_id, code_cells)
                try:
                    result = _run_async(go)
                finally:
                    progress.stop()
                    self.deferred.install()  # the engine restored the default handlers: defer until committed
                self.deferred.received = self.deferred.received or result.signum
            status = RunStatus(result.status)
            error = None
            if status is not RunStatus.SUCCEEDED:
                error = RunError(
                    kind=result.error_kind or status.value,
                    message=redactor.cut(result.error_message or "", _MAX_MESSAGE),
                    cell_index=result.cell_index,
                )
            return self._record(nb, status, error, lock_event, dict(server.results), redactor)
        except (Exception, asyncio.CancelledError) as exc:
            # a bug in the runner after the kernel may have run (a destructive apply may have happened): the
            # partial notebook is still the record, as a failed run, if the archive takes it; else exit 70
            if self._committed:
                raise
            message = f"{type(exc).__name__}: {exc} (the runner failed; the notebook as far as it ran is the record)"
            error = RunError(kind="RunnerError", message=redactor.cut(message, _MAX_MESSAGE), cell_index=None)
            try:
                return self._record(nb, RunStatus.FAILED, error, lock_event, dict(server.results), redactor)
            except Exception:
                raise exc from None

    def _stamp(self, nb: Any, status: RunStatus, error: RunError | None) -> None:
        nb.metadata["runbook_run"] = {
            "run_id": self.run_id,
            "status": status.value,
            "error": error.model_dump() if error else None,
            "environment": self.environment,
            "actor": self.actor,
        }

    def _record(
        self,
        nb: Any,
        status: RunStatus,
        error: RunError | None,
        lock_event: LockEvent | None,
        results: dict[str, Any],
        redactor: Redactor,
    ) -> RunOutcome:
        """Scrub the notebook and the manifest, and commit both: the only write of a run.

        With ``--timeout``, scrubbing gets what is left of the timeout plus the grace
        (:mod:`runbooks.runner.deadline`); past it the outputs are not archived and the run is timed_out."""
        from runbooks.redact import default_redactor
        from runbooks.runner import deadline

        results = {**results, **self._hook(status, error, results, redactor)}
        redactor.update(default_redactor())  # anything resolved in this process meanwhile
        self._stamp(nb, status, error)
        body = deadline.scrub_within(nb, redactor, deadline.budget(self.t0, self.timeout))
        if body is None:
            message = (
                f"the run's {self.timeout:g}s timeout (plus {deadline.DEADLINE_GRACE:g}s to record it) passed "
                "while its outputs were scrubbed: they were not archived"
            )
            if status is RunStatus.SUCCEEDED:  # any other status keeps its own error
                status, error = RunStatus.TIMED_OUT, RunError(kind="Timeout", message=message, cell_index=None)
            self._stamp(nb, status, error)
            body = deadline.without_outputs(nb, redactor)
        manifest = self._manifest(status, error, dict(self.values), lock_event, results, redactor)
        self._committed = True  # from here on, a second commit of this run id must not be tried
        return self._outcome(manifest, self.store.commit(manifest, {NOTEBOOK_FILE: body.encode("utf-8")}))

    def _hook(
        self, status: RunStatus, error: RunError | None, results: dict[str, Any], redactor: Redactor
    ) -> dict[str, Any]:
        """The ``on_end`` hook's extra results; a hook that fails is recorded, never fatal to the record."""
        from runbooks.redact import default_redactor

        if self.on_end is None:
            return {}

        def scrub(text: str) -> str:
            redactor.update(default_redactor())
            return redactor.scrub(text)

        end = RunEnd(
            self.run_id,
            self.procedure,
            self.environment,
            self.trigger,
            status,
            error,
            dict(results),
            self.store,
            scrub,
        )
        try:
            return dict(self.on_end(end))
        except Exception as e:
            return {"on_end_error": f"{type(e).__name__}: {e}"}


def _skip_unused_heavy_imports() -> None:
    """Start-up cost: nbformat imports jsonschema, which builds an RFC 3987 grammar at import time (about a
    second) to check the ``iri`` string format; no notebook schema uses that format, so the runner does not
    load it. Only done when jsonschema is not imported yet (it treats the module as absent, as designed)."""
    if "jsonschema" not in sys.modules:
        # None in sys.modules makes ``import rfc3987_syntax`` raise ImportError (the documented way to block it)
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _run_async(factory: Any) -> Any:
    """Run ``factory()`` in an event loop; in a thread when this thread already runs one (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="runbooks-runner")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_procedure(
    name_or_path: str | Path,
    params: dict[str, Any] | None = None,
    environment: str = "sandbox",
    timeout: float | None = None,
    actor: str | None = None,
    trigger: str = "manual",
    archive_root: Path | str | None = None,
    progress: bool = False,
    on_end: OnEnd | None = None,
    output_caps: OutputCaps | None = None,
) -> RunOutcome:
    """Run a procedure through the audit-grade runner and archive the record (see the module doc).

    ``on_end`` (optional) is called once the notebook has run, before the record is committed; the results it
    returns are added to the record (``runbooks schedule`` records the alerts it sent this way).
    ``output_caps``: characters of output kept per cell and per run (default
    :class:`runbooks.runner.output_cap.OutputCaps`); past them, output is cut with a visible marker.
    """
    run = _Run(
        name_or_path,
        dict(params or {}),
        environment,
        timeout,
        actor,
        trigger,
        archive_root,
        progress,
        on_end=on_end,
        output_caps=output_caps,
    )
    with run.deferred:
        try:
            path, text = run.prepare()
        except (NotebookError, ParamError) as e:
            return run.refuse(str(e))
        return run.execute(path, text)


def refuse_run(
    name_or_path: str | Path,
    message: str,
    params: dict[str, Any] | None = None,
    environment: str = "sandbox",
    actor: str | None = None,
    trigger: str = "manual",
    archive_root: Path | str | None = None,
) -> RunOutcome:
    """Archive a ``refused`` record for a request refused before validation (e.g. a malformed ``-p``)."""
    run = _Run(name_or_path, dict(params or {}), environment, None, actor, trigger, archive_root, False)
    return run.refuse(message)


class ExternalRun:
    """A run the runner does not execute: an apply authorised in a kernel the runner did not start (JupyterLab).

    Its id exists from the start (the environment's lock names it); :meth:`finish` scrubs the notebook the caller
    assembled (as the runner scrubs: registered values and credential-looking strings) and commits it with its
    manifest, through the same archive store, exactly as a runner's record.
    """

    def __init__(
        self,
        procedure: str,
        notebook: Path | None,
        environment: str,
        actor: str | None,
        trigger: str,
        archive: str | Path | None,
    ) -> None:
        self._run = _Run(notebook or procedure, {}, environment, None, actor, trigger, archive, False)
        if notebook is not None:
            with contextlib.suppress(Exception):  # an unreadable notebook: recorded without its spec
                self._run._load(notebook)

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def store(self) -> Any:
        return self._run.store

    @property
    def actor(self) -> str:
        return self._run.actor

    def parameter_names(self) -> list[str]:
        return list(self._run.spec.params) if self._run.spec is not None else []

    def finish(
        self,
        nb: Any,
        status: RunStatus,
        error: RunError | None,
        parameters: dict[str, Any],
        lock: LockEvent | None,
        results: dict[str, Any],
    ) -> RunOutcome:
        from runbooks.redact import Redactor, default_redactor

        self._run.values = dict(parameters)
        redactor = Redactor()
        redactor.update(default_redactor())
        return self._run._record(nb, status, error, lock, results, redactor)
