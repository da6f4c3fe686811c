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


def test_a_callers_own_handler_hears_the_signal_after_the_run() -> None:
    heard: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: heard.append(signum))
    try:
        with _DeferSignals():
            os.kill(os.getpid(), signal.SIGTERM)
            assert heard == []  # deferred while the run finishes and commits
        assert heard == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
