from datetime import UTC, datetime, timedelta

import pytest

from runbooks import inventory
from runbooks.checks import Status, run_checks
from runbooks.checks.split_triggers import Sample, api_latency, build_checks, multi_region, worker_memory

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GIB = 2**30


@pytest.fixture(scope="module")
def triggers():
    return inventory.load("production").split_triggers


def series(values, *, hours=72, now=NOW):
    step = timedelta(hours=hours) / max(1, len(values) - 1)
    return [Sample(now - timedelta(hours=hours) + i * step, v) for i, v in enumerate(values)]


def test_worker_memory_consistently_high_fires(triggers):
    r = worker_memory("worker", series([0.85 * GIB] * 100), GIB, triggers, now=NOW)
    assert r.status is Status.FAIL
    assert "dedicated tier" in r.remediation


def test_worker_memory_low_passes(triggers):
    r = worker_memory("worker", series([0.4 * GIB] * 100), GIB, triggers, now=NOW)
    assert r.status is Status.PASS, r


def test_worker_memory_occasional_spike_warns(triggers):
    values = [0.4 * GIB] * 90 + [0.9 * GIB] * 10
    r = worker_memory("worker", series(values), GIB, triggers, now=NOW)
    assert r.status is Status.WARN


def test_worker_memory_short_history_warns(triggers):
    r = worker_memory("worker", series([0.4 * GIB] * 10, hours=6), GIB, triggers, now=NOW)
    assert r.status is Status.WARN and "cover" in r.evidence


def test_worker_memory_ignores_samples_outside_window(triggers):
    old = [Sample(NOW - timedelta(hours=200 + i), 0.99 * GIB) for i in range(50)]
    r = worker_memory("worker", old + series([0.3 * GIB] * 100), GIB, triggers, now=NOW)
    assert r.status is Status.PASS


def test_api_latency_sustained_fires_and_calm_passes(triggers):
    limit = triggers.api_latency_p95_ratio * triggers.api_latency_baseline_ms
    assert api_latency("api", series([limit * 1.5] * 50), triggers, now=NOW).status is Status.FAIL
    assert api_latency("api", series([limit * 0.5] * 50), triggers, now=NOW).status is Status.PASS
    assert api_latency("api", [], triggers, now=NOW).status is Status.WARN


def test_multi_region(triggers):
    assert multi_region(triggers).status is Status.PASS
    assert multi_region(triggers.model_copy(update={"multi_region_required": True})).status is Status.FAIL


def test_build_checks_runs_every_trigger(triggers):
    results = run_checks(
        build_checks(
            triggers, memory={"worker": (series([0.9 * GIB] * 10), GIB)}, latency={"api": series([50.0] * 10)}, now=NOW
        )
    )
    assert [(r.check, r.status) for r in results] == [
        ("split.worker_memory", Status.FAIL),
        ("split.api_latency", Status.PASS),
        ("split.multi_region", Status.PASS),
    ]
