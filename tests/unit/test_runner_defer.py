"""Signals outside the engine are deferred so a run always ends with its record."""

from __future__ import annotations

import os
import signal

from runbooks.runner.run import _DeferSignals


def test_signals_are_remembered_not_fatal_and_handlers_restored() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with _DeferSignals() as deferred:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert deferred.pending() == signal.SIGTERM  # the first one wins; the process is still alive
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
