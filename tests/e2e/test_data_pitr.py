"""Real point-in-time recovery of the twin's Postgres through the Supabase twin (a twin of its own: a
restore rewinds the whole cluster). Data must be exactly as at each target, and restore-pitr through the
runner must prove its own rewind with markers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runner_fixtures import run_runbook as _run

from runbooks.archive.manifest import RunStatus
from runbooks.plan import authorise
from runbooks.procedures import pitr
from runbooks.providers.postgres import Postgres
from runbooks.providers.supabase import SupabaseManagement
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from runbooks.sandbox.fixture import running_sandbox

    with running_sandbox(tmp_path_factory.mktemp("pitr-twin"), components=["supabase"], set_env=True) as sbx:
        yield sbx


def _digest(pg: Postgres) -> tuple[int, str]:
    with pg.connect() as conn:
        row = conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM pitr_probe t"
        ).fetchone()
        return int(row[0]), str(row[1])  # type: ignore[index]


def _phase(pg: Postgres, n: int, phase: str) -> None:
    with pg.connect() as conn:
        conn.execute(
            "INSERT INTO pitr_probe (phase, body) SELECT %s, md5(random()::text) FROM generate_series(1, %s)",
            (phase, n),
        )
        if phase != "a":
            conn.execute("UPDATE pitr_probe SET body = body || %s WHERE id %% 7 = 0", (phase,))


def _target_after_last_commit(pg: Postgres) -> int:
    """A whole-second target strictly after everything committed so far, with the clock moved past it."""
    with pg.connect() as conn:
        committed = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    # past the judging slack of expected_markers (markers within it of the target are not judged)
    target = math.ceil(committed.timestamp() + pitr.MARKER_SLACK.total_seconds() + 0.05)
    pitr.wait_past(pg, datetime.fromtimestamp(target, UTC), margin=0.3)
    return target


def _restore(sb: SupabaseManagement, target: int, name: str) -> pitr.Timeline:
    plan = pitr.PitrPlan("sandbox", sb.project_ref, "test", "", target, "", {}, [], None, name)
    return pitr.apply_plan(sb, plan, authorise("sandbox"), target_unix=target, deadline_s=120, poll_s=0.2)


def test_restore_to_several_targets_gives_the_data_as_at_each(twin: Sandbox) -> None:
    pg = Postgres(twin.database_url)
    sb = SupabaseManagement.from_environment(twin.inventory())
    with pg.connect() as conn:
        conn.execute("CREATE TABLE pitr_probe (id bigserial PRIMARY KEY, phase text, body text)")
    states: dict[str, tuple[int, tuple[int, str]]] = {}
    for phase, rows in (("a", 500), ("b", 700), ("c", 300)):
        _phase(pg, rows, phase)
        pitr.add_marker(pg, f"probe-{phase}")
        states[phase] = (_target_after_last_commit(pg), _digest(pg))
    _phase(pg, 100, "d")  # after the last target: must disappear
    assert _digest(pg) != states["c"][1]

    # newest target first: a restore starts a new timeline, on which the times after its target only hold
    # what is written after the restore (as on the real service)
    for phase, markers_present, markers_absent in (
        ("c", ["seed", "probe-a", "probe-b", "probe-c"], []),
        ("b", ["seed", "probe-a", "probe-b"], ["probe-c"]),
        ("a", ["seed", "probe-a"], ["probe-b", "probe-c"]),
    ):
        target, expected = states[phase]
        tl = _restore(sb, target, f"t-{phase}")
        assert _digest(pg) == expected, f"data differs from the state at target {phase}"
        verdict = pitr.verify_markers(pg, markers_present, markers_absent)
        assert verdict["ok"], verdict
        statuses = [e.get("status") for e in tl.events if e["event"] == "project status"]
        assert statuses[0] == "RESTORING" and statuses[-1] == "ACTIVE_HEALTHY"

    window = sb.pitr_window()
    assert window.enabled and window.earliest is not None


def test_restore_pitr_runbook_applies_and_proves_the_rewind(twin: Sandbox, tmp_path: Path) -> None:
    archive = tmp_path / "runs"
    pg = Postgres(twin.database_url)
    outcome, rec = _run("restore-pitr", archive, apply="true", confirm="sandbox")
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    verdict = rec["results"]["markers"]
    assert verdict["ok"] and verdict["expected_absent"] and not verdict["unexpectedly_present"]
    after = verdict["expected_absent"][0]
    assert after.endswith("-after") and after not in (pitr.markers(pg) or {})
    timeline = rec["results"]["pitr_timeline"]
    events = [e["event"] for e in timeline["events"]]
    assert events[:3] == ["window re-checked", "restore point created", "restore requested"]
    assert events[-1] == "services healthy" and verdict["status"] == "PASS"
    assert timeline["restore_seconds"] > 0

    dry, dry_rec = _run("restore-pitr", archive)
    assert dry.status is RunStatus.SUCCEEDED
    assert dry_rec["results"]["plan"]["last_restore_seconds"] == timeline["restore_seconds"]


def test_restore_pitr_runbook_to_an_explicit_target(twin: Sandbox, tmp_path: Path) -> None:
    pg = Postgres(twin.database_url)
    pitr.add_marker(pg, "explicit-before")
    target = _target_after_last_commit(pg)
    pitr.add_marker(pg, "explicit-after")
    iso = datetime.fromtimestamp(target, UTC).isoformat().replace("+00:00", "Z")
    outcome, rec = _run(
        "restore-pitr",
        tmp_path / "runs",
        target_time=iso,
        reason="bad deploy at 11:00",
        apply="true",
        confirm="sandbox",
    )
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert rec["results"]["plan"]["target_unix"] == target
    verdict = rec["results"]["markers"]
    assert "explicit-before" in verdict["expected_present"] and "explicit-after" in verdict["expected_absent"]
    assert verdict["ok"] and verdict["status"] == "PASS"
    marks = pitr.markers(pg) or {}
    assert "explicit-before" in marks and "explicit-after" not in marks
