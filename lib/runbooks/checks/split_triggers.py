"""Split-trigger review: HOSTING.md, "When to split the shared compute substrate".

- Workers' memory consistently above ``worker_memory_fraction`` of their allocation -> move workers to a
  dedicated tier first.
- A sustained noisy-neighbour effect on API latency -> split immediately.
- A multi-region requirement -> re-architect.

"Consistently" and "sustained" are made precise by the inventory's ``split_triggers``: the share of samples
over the last ``window_hours`` that must exceed the threshold. Checks here are pure functions of metric
series, so that every trigger's fire / no-fire path is unit-tested; the notebook fetches the series from
Render's metrics API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.checks.base import CheckResult
from runbooks.checks.builder import CheckFamily, CheckFn
from runbooks.inventory.models import Environment, SplitTriggers

#: below this coverage of the window, a verdict is not trustworthy: WARN instead of PASS
MIN_COVERAGE = 0.8

#: the split triggers (split-trigger-review), each id registered once
SPLIT = CheckFamily("split-triggers")


@dataclass(frozen=True)
class Sample:
    at: datetime
    value: float


def _in_window(samples: Sequence[Sample], window: timedelta, now: datetime) -> list[Sample]:
    start = now - window
    return sorted((s for s in samples if start <= s.at <= now), key=lambda s: s.at)


def _coverage(samples: Sequence[Sample], window: timedelta) -> float:
    if len(samples) < 2:
        return 0.0
    return min(1.0, (samples[-1].at - samples[0].at) / window)


@SPLIT.check("split.worker_memory", title="workers' memory not consistently above the threshold")
def worker_memory(
    service: str, samples: Sequence[Sample], limit_bytes: float, triggers: SplitTriggers, *, now: datetime | None = None
) -> CheckResult:
    """Memory used by a worker service against its allocation, over the review window."""
    now = now or datetime.now(UTC)
    window = timedelta(hours=triggers.window_hours)
    pts = _in_window(samples, window, now)
    if not pts or limit_bytes <= 0:
        return worker_memory.warn(
            service,
            f"no memory samples in the last {triggers.window_hours} h",
            "check that the metrics API returns memory for this service, then re-run",
        )
    threshold = triggers.worker_memory_fraction
    over = sum(1 for s in pts if s.value / limit_bytes > threshold)
    share = over / len(pts)
    peak = max(s.value for s in pts) / limit_bytes
    evidence = (
        f"{share:.0%} of {len(pts)} samples above {threshold:.0%} of {limit_bytes / 2**20:.0f} MiB "
        f"(peak {peak:.0%}); trigger at {triggers.sustained_share:.0%} of samples"
    )
    if share >= triggers.sustained_share:
        return worker_memory.fail(
            service,
            evidence,
            "trigger fired: move workers to a dedicated tier first (HOSTING.md, when to split)",
        )
    coverage = _coverage(pts, window)
    if coverage < MIN_COVERAGE:
        return worker_memory.warn(
            service,
            f"{evidence}; samples cover only {coverage:.0%} of the window",
            "not enough history for a verdict: re-run when the window is covered",
        )
    if over:
        return worker_memory.warn(
            service, evidence, "above the threshold at times but not consistently: watch the trend"
        )
    return worker_memory.ok(service, evidence)


@SPLIT.check("split.api_latency", title="no sustained noisy-neighbour effect on API latency")
def api_latency(
    service: str, p95_ms: Sequence[Sample], triggers: SplitTriggers, *, now: datetime | None = None
) -> CheckResult:
    """Noisy neighbour: API p95 latency above ``api_latency_p95_ratio`` x baseline, sustained over the window."""
    now = now or datetime.now(UTC)
    window = timedelta(hours=triggers.window_hours)
    pts = _in_window(p95_ms, window, now)
    if not pts:
        return api_latency.warn(
            service,
            f"no latency samples in the last {triggers.window_hours} h",
            "check that the metrics API returns HTTP latency for this service, then re-run",
        )
    limit = triggers.api_latency_p95_ratio * triggers.api_latency_baseline_ms
    over = sum(1 for s in pts if s.value > limit)
    share = over / len(pts)
    worst = max(s.value for s in pts)
    evidence = (
        f"{share:.0%} of {len(pts)} samples of p95 above {limit:.0f} ms "
        f"({triggers.api_latency_p95_ratio}x the {triggers.api_latency_baseline_ms:.0f} ms baseline); "
        f"worst {worst:.0f} ms"
    )
    if share >= triggers.sustained_share:
        return api_latency.fail(
            service,
            evidence,
            "trigger fired: sustained noisy-neighbour effect on API latency, split immediately",
        )
    if over:
        return api_latency.warn(service, evidence, "latency spikes, not sustained: correlate with deploys")
    return api_latency.ok(service, evidence)


@SPLIT.check("split.multi_region", title="no multi-region requirement recorded")
def multi_region(triggers: SplitTriggers) -> CheckResult:
    """A multi-region requirement recorded in the inventory (re-architect)."""
    if triggers.multi_region_required:
        return multi_region.fail(
            "platform",
            "a multi-region requirement is recorded in the inventory",
            "trigger fired: re-architect (one workspace, one region no longer holds)",
        )
    return multi_region.ok("platform", "no multi-region requirement recorded")


def build_checks(
    triggers: SplitTriggers,
    *,
    memory: dict[str, tuple[Sequence[Sample], float]],
    latency: dict[str, Sequence[Sample]],
    now: datetime | None = None,
) -> list[CheckFn]:
    """``memory``: worker service -> (samples in bytes, limit in bytes); ``latency``: web service -> p95 ms."""
    return [
        *(worker_memory.on(svc, svc, samples, limit, triggers, now=now) for svc, (samples, limit) in memory.items()),
        *(api_latency.on(svc, svc, samples, triggers, now=now) for svc, samples in latency.items()),
        multi_region.on("platform", triggers),
    ]


def series_from_render(
    env: Environment,
    render: Any,
    *,
    now: datetime | None = None,
    resolution_seconds: int = 300,
) -> tuple[dict[str, tuple[list[Sample], float]], dict[str, list[Sample]]]:
    """The series :func:`build_checks` needs, from Render's metrics API over the review window.

    Memory of every worker service against its memory limit (the API's, else the inventory's allocation);
    p95 HTTP latency of the service behind the API hostname (programmatic clients).
    """
    now = now or datetime.now(UTC)
    start = now - timedelta(hours=env.split_triggers.window_hours)
    ids = {s.name: s.id for s in render.services()}

    def samples(metric: str, name: str, **kw: Any) -> list[Sample]:
        return [
            Sample(at, v)
            for at, v in render.metric(
                metric, ids[name], start=start, end=now, resolution_seconds=resolution_seconds, **kw
            )
        ]

    memory: dict[str, tuple[list[Sample], float]] = {}
    for s in env.services:
        if s.kind == "worker" and s.name in ids:
            limits = [x.value for x in samples("memory-limit", s.name)]
            memory[s.name] = (samples("memory", s.name), max(limits) if limits else s.memory_limit_mb * 2**20)
    api_names = [h.label for h in env.hostnames if h.streams_events or "programmatic" in h.audience]
    latency = {name: samples("http-latency", name, quantile=0.95) for name in api_names if name in ids}
    return memory, latency
