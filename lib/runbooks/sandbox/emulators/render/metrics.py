"""Metric series of the twin: memory, memory limit, CPU and HTTP latency, from a per-service profile.

A profile (set at seed time or through ``PUT /__twin/metrics/{serviceId}``) gives the level of each
series; samples vary deterministically around it so that a window of samples is reproducible.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULTS: dict[str, float] = {
    "memory_fraction": 0.45,  # of the memory limit
    "memory_jitter": 0.03,
    "cpu": 0.25,  # cores
    "latency_p50_ms": 40.0,
    "latency_p95_ms": 95.0,
    "latency_p99_ms": 180.0,
    "latency_jitter": 0.05,
}
MAX_POINTS = 5000


def _parse_time(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def timestamps(start: str | None, end: str | None, resolution: int | None) -> list[datetime]:
    t_end = _parse_time(end, datetime.now(UTC))
    t_start = _parse_time(start, t_end - timedelta(hours=1))
    step = max(30, int(resolution or 60))
    span = (t_end - t_start).total_seconds()
    step = max(step, math.ceil(span / MAX_POINTS))
    n = max(1, int(span // step))
    return [t_start + timedelta(seconds=step * i) for i in range(n)]


def _wave(t: datetime, jitter: float) -> float:
    x = t.timestamp() / 600.0
    return 1.0 + jitter * (math.sin(x) + 0.5 * math.sin(3.7 * x))


def value(metric: str, profile: dict[str, Any], memory_limit_mb: int, t: datetime, quantile: float = 0.95) -> float:
    p = {**DEFAULTS, **profile}
    limit = memory_limit_mb * 1024 * 1024
    if metric == "memory":
        return round(min(limit, limit * p["memory_fraction"] * _wave(t, p["memory_jitter"])), 0)
    if metric == "memory-limit":
        return float(limit)
    if metric == "cpu":
        return round(p["cpu"] * _wave(t, 0.1), 4)
    if metric == "http-latency":
        key = {0.5: "latency_p50_ms", 0.99: "latency_p99_ms"}.get(quantile, "latency_p95_ms")
        return round(p[key] * _wave(t, p["latency_jitter"]), 2)
    raise KeyError(metric)


UNITS = {"memory": "bytes", "memory-limit": "bytes", "cpu": "cpu", "http-latency": "ms"}


def series(
    metric: str,
    service: dict[str, Any],
    profile: dict[str, Any],
    *,
    start: str | None,
    end: str | None,
    resolution: int | None,
    quantile: float | None = None,
) -> dict[str, Any]:
    labels = [{"field": "resource", "value": service["id"]}, {"field": "service", "value": service["name"]}]
    q = quantile if quantile is not None else 0.95
    if metric == "http-latency":
        labels.append({"field": "quantile", "value": str(q)})
    points = [
        {
            "timestamp": t.isoformat().replace("+00:00", "Z"),
            "value": value(metric, profile, service["memory_limit_mb"], t, q),
        }
        for t in timestamps(start, end, resolution)
    ]
    return {"labels": labels, "unit": UNITS[metric], "values": points}
