"""Shared fixtures: the local twin of the hosting.

- ``sandbox`` (session scope): one full twin for the whole session, under a temporary root, with
  ``RUNBOOKS_SANDBOX`` pointing at it so ``runbooks.load_inventory("sandbox")``, ``sandbox:`` secrets and
  the runner all use it. Brought down at the end of the session.
- ``sandbox_factory``: builds separate twins (e.g. with faults) as context managers, each torn down on
  exit and, as a safety net, at the end of the test::

      def test_fault(sandbox_factory):
          with sandbox_factory(faults=["backup-no-object-lock"], components=["s3"]) as sbx:
              ...
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest

from runbooks import redact
from runbooks.sandbox.fixture import Sandbox, running_sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: needs the local twin (started by the session fixture)")
    config.addinivalue_line("markers", "slow: long-running end-to-end test")
    config.addinivalue_line("markers", "first: long and independent of the rest: started before every other test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``first`` (mypy: a minute of one core without its cache) run before the others, in their
    order: under xdist's work stealing a worker's queue is taken from its end, so what starts first never
    holds up the end of the suite (a minute-long test started last would)."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)


@pytest.fixture(autouse=True)
def _process_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from a copy of the process-wide redactor and leaves it as it found it: a value one test
    registered (a refused parameter, a resolved secret) must not be scrubbed from a later test's output in the
    same worker process (it did: a unit test's refused ``manual_revoked=SUPABASE_SECRET_KEY`` hid the key's
    name from the rotate-keys e2e tests that ran after it)."""
    copy = redact.Redactor()
    copy.update(redact.default_redactor())
    monkeypatch.setattr(redact, "_default", copy)


@pytest.fixture(autouse=True)
def _signal_dispositions() -> Iterator[None]:
    """Each test leaves SIGINT and SIGTERM as it found them. The CLI's ``run`` ignores both once its record is
    committed (its process is about to exit with the run's code); a test that ran it in-process left its worker
    ignoring them, and a process the worker spawned later inherited SIG_IGN: ``Pool.terminate`` could not stop
    it (a 300 s hang of test_archive_store's concurrent writers)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("sandbox")
    with running_sandbox(root, set_env=True) as sbx:
        yield sbx


SandboxFactory = Callable[..., AbstractContextManager[Sandbox]]


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    with ExitStack() as stack:

        def make(
            *,
            faults: Iterable[str] = (),
            components: Iterable[str] | None = None,
            scale: int = 1,
            root: Path | None = None,
            set_env: bool = False,
        ) -> AbstractContextManager[Sandbox]:
            cm = running_sandbox(
                root or tmp_path_factory.mktemp("sandbox-f"),
                faults=faults,
                components=components,
                scale=scale,
                set_env=set_env,
            )
            return _Guarded(cm, stack)

        yield make


class _Guarded(AbstractContextManager[Sandbox]):
    """Enter through the test's ``with``; if the test leaks it, the fixture's ExitStack closes it."""

    def __init__(self, cm: AbstractContextManager[Sandbox], stack: ExitStack):
        self._cm, self._stack, self._open = cm, stack, False

    def __enter__(self) -> Sandbox:
        sbx = self._cm.__enter__()
        self._open = True
        self._stack.callback(self._close)
        return sbx

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._cm.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> bool | None:
        if self._open:
            self._open = False
            return self._cm.__exit__(*exc)  # type: ignore[arg-type]
        return None
