"""Render metric series: the twin's generator and the split-trigger review's collection from the Render API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.checks import Status, run_checks
from runbooks.checks.split_triggers import build_checks, series_from_render
from runbooks.inventory.loader import load
from runbooks.sandbox.emulators.render import metrics

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_twin_series_follow_the_profile_and_the_window() -> None:
    svc = {"id": "srv-1", "name": "worker", "memory_limit_mb": 1024}
    start = (NOW - timedelta(hours=72)).isoformat()
    s = metrics.series(
        "memory", svc, {"memory_fraction": 0.8, "memory_jitter": 0.0}, start=start, end=NOW.isoformat(), resolution=300
    )
    assert s["unit"] == "bytes" and len(s["values"]) == 72 * 12
    assert {v["value"] for v in s["values"]} == {round(0.8 * 1024 * 2**20)}
    assert {"field": "resource", "value": "srv-1"} in s["labels"]
    lat = metrics.series("http-latency", svc, {}, start=start, end=NOW.isoformat(), resolution=3600, quantile=0.99)
    assert {"field": "quantile", "value": "0.99"} in lat["labels"]
    assert all(100 < v["value"] < 250 for v in lat["values"])
    huge = metrics.series(
        "cpu", svc, {}, start=(NOW - timedelta(days=365)).isoformat(), end=NOW.isoformat(), resolution=30
    )
    assert len(huge["values"]) <= metrics.MAX_POINTS


class FakeRender:
    def __init__(self, memory_fraction: float, p95: float):
        self.memory_fraction, self.p95 = memory_fraction, p95
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def services(self) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, id=f"srv-{n}") for n in ("app", "api", "ops", "worker")]

    def metric(self, metric: str, service_id: str, **kw: Any) -> list[tuple[datetime, float]]:
        self.calls.append((metric, service_id, kw))
        start, end = kw["start"], kw["end"]
        n = int((end - start).total_seconds() // kw["resolution_seconds"])
        ts = [start + timedelta(seconds=kw["resolution_seconds"] * i) for i in range(n)]
        value = {"memory": self.memory_fraction * 4096 * 2**20, "memory-limit": 4096 * 2**20, "http-latency": self.p95}[
            metric
        ]
        return [(t, value) for t in ts]


def verdicts(render: FakeRender) -> dict[str, Status]:
    env = load("production")
    memory, latency = series_from_render(env, render, now=NOW, resolution_seconds=600)
    assert set(memory) == {"worker"} and set(latency) == {"api"}
    results = run_checks(build_checks(env.split_triggers, memory=memory, latency=latency, now=NOW))
    return {r.check: r.status for r in results}


def test_series_collection_drives_the_triggers() -> None:
    quiet = FakeRender(0.4, 90)
    assert verdicts(quiet) == {
        "split.worker_memory": Status.PASS,
        "split.api_latency": Status.PASS,
        "split.multi_region": Status.PASS,
    }
    assert ("http-latency", "srv-api") in {(c[0], c[1]) for c in quiet.calls}
    assert all(c[2]["end"] - c[2]["start"] == timedelta(hours=72) for c in quiet.calls)
    assert verdicts(FakeRender(0.85, 90))["split.worker_memory"] is Status.FAIL
    assert verdicts(FakeRender(0.4, 400))["split.api_latency"] is Status.FAIL
