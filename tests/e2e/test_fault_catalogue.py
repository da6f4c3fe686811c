"""Every fault of the twin's catalogue is caught by the runbook run its component declares (generated).

``runbooks.sandbox.faults.twin_groups()`` packs the caught faults into groups that do not interfere; each
group is one faulted twin, on which every declared run happens once (catchers with the same runbook and
parameters share it). A ``checks`` catcher: exactly the declared rows FAIL (``check`` or ``check@subject``;
every failing row is declared by a fault of the group, every declared row fails). A ``refusal`` catcher: the
run is refused with that message. On the clean (session) twin every declared run that is not an apply passes,
with the declared checks present. A few faults have further assertions (``FOLLOW_UP``), made on the same twin
after the catchers ran.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import assert_refused, run_runbook
from twin_probes import S3_PROBES, assert_archive_clean, group_env, secret_files, supabase, twin_secrets

from runbooks.archive.manifest import RunStatus
from runbooks.procedures import pitr
from runbooks.providers.postgres import Postgres
from runbooks.providers.supabase import SupabaseManagement
from runbooks.sandbox.component import Catcher
from runbooks.sandbox.faults import Fault, catalogue, twin_groups
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

RunKey = tuple[str, tuple[tuple[str, str], ...]]
Runs = dict[RunKey, tuple[Any, dict[str, Any]]]
Row = tuple[str, str, dict[str, Any]]  #: (check or step id, subject, the row)

GROUPS = twin_groups()
FAILED_STATUSES = {"FAIL", "failed"}

#: components a runbook needs (the lifecycle adds their dependencies); a group whose runbooks are all listed
#: gets only these and its faults' components, otherwise the full twin
NEEDS: dict[str, tuple[str, ...]] = {
    "verify-backup-posture": ("supabase",),
    "restore-drill": ("supabase",),
    "nightly-backup": ("supabase",),
    "restore-pitr": ("supabase",),
    "check-dns-posture": ("edge",),
    "audit-config-placement": ("render",),
    "rotate-keys": ("render",),
}


def components_for(group: tuple[Fault, ...]) -> list[str] | None:
    wanted = {f.component for f in group}
    for c in (c for f in group for c in f.caught_by):
        if c.runbook not in NEEDS:
            return None
        wanted |= set(NEEDS[c.runbook])
    return sorted(wanted)


def runs_of(faults: tuple[Fault, ...]) -> dict[RunKey, list[Catcher]]:
    """Declared catchers by run, in declaration order (name order of the faults, then each fault's order)."""
    out: dict[RunKey, list[Catcher]] = {}
    for f in faults:
        for c in f.caught_by:
            out.setdefault(c.run_key, []).append(c)
    return out


def rows(results: Any) -> Iterator[Row]:
    """Every check / step row anywhere in a run's results."""
    if isinstance(results, dict):
        if "status" in results and ("check" in results or "step" in results):
            rid = str(results.get("check") or results.get("step"))
            yield rid, str(results.get("subject", results.get("key", ""))), results
        for v in results.values():
            yield from rows(v)
    elif isinstance(results, list):
        for v in results:
            yield from rows(v)


def matches(spec: str, row: Row) -> bool:
    check, _, subject = spec.partition("@")
    return row[0] == check and (not subject or row[1] == subject)


def assert_caught(catchers: list[Catcher], outcome: Any, rec: dict[str, Any]) -> None:
    refusals = [c.refusal for c in catchers if c.refusal]
    if refusals:
        for text in refusals:
            assert_refused(outcome, text)
        return
    assert outcome.status is not RunStatus.SUCCEEDED, rec.get("error")
    specs = [s for c in catchers for s in c.checks]
    failing = [r for r in rows(rec.get("results", {})) if r[2]["status"] in FAILED_STATUSES]
    missed = [s for s in specs if not any(matches(s, r) for r in failing)]
    unexplained = sorted({f"{r[0]}@{r[1]}" for r in failing if not any(matches(s, r) for s in specs)})
    assert not missed and not unexplained, f"declared but not FAIL: {missed}; FAIL but not declared: {unexplained}"
    for _, _, row in failing:
        assert row.get("remediation", "given") and row.get("evidence", row.get("detail", "given")), row


# -- further assertions on the faulted twin ---------------------------------------------------------
#: fault -> generator: runs to ``yield`` before the catchers, receives their runs, then asserts more
FollowUp = Callable[[Sandbox, Path], Generator[None, Runs, None]]


def _drill_refuses_corrupt_backup(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    yield
    pg = Postgres(sbx.database_url)
    with pg.connect() as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    outcome, rec = run_runbook("restore-drill", archive)
    assert outcome.status is RunStatus.FAILED
    d = rec["results"]["drill"]
    assert not d["ok"] and d["error"].startswith("ChecksumMismatch") and not d["scratch_database"]
    with pg.connect() as conn:
        assert {r[0] for r in conn.execute("SELECT datname FROM pg_database")} == before


def _new_backup_heals(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    runs = yield
    _, rec = runs[("verify-backup-posture", ())]
    evidence = {r[0]: r[2]["evidence"] for r in rows(rec["results"])}
    assert "72." in evidence["backup.freshness"]
    if "backup.checksum" in {r[0] for r in rows(rec["results"]) if r[2]["status"] == "FAIL"}:
        assert "!= sidecar" in evidence["backup.checksum"]
    assert run_runbook("nightly-backup", archive)[0].status is RunStatus.SUCCEEDED
    _, rec = run_runbook("verify-backup-posture", archive)
    statuses = {r[0]: r[2]["status"] for r in rows(rec["results"])}
    assert statuses["backup.freshness"] == statuses["backup.checksum"] == "PASS", statuses
    assert run_runbook("restore-drill", archive)[0].status is RunStatus.SUCCEEDED


def _pitr_apply_refused_changes_nothing(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    yield
    pg = Postgres(sbx.database_url)
    before = pitr.markers(pg)
    outcome, rec = run_runbook("restore-pitr", archive, apply="true", confirm="sandbox")
    assert_refused(outcome, "environment='sandbox': point-in-time recovery is disabled")
    assert "pitr_timeline" not in rec["results"]
    assert pitr.markers(pg) == before
    sb = SupabaseManagement.from_environment(sbx.inventory())
    assert sb.list_backups()["pitr_enabled"] is False and sb.project_status() == "ACTIVE_HEALTHY"


def _rotation_blocked_by_key_on_service(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    before = [k.id for k in supabase(sbx).api_keys()]
    runs = yield
    _, rot = runs[("rotate-keys", (("apply", "true"), ("confirm", "sandbox")))]
    assert "preflight failed" in str(rot.get("error"))
    assert any("also set on service(s) api" in p["detail"] for p in rot["results"]["preflight"])
    assert [k.id for k in supabase(sbx).api_keys()] == before
    assert_archive_clean(archive, twin_secrets(sbx))  # never a rotating key's value, the one on a service included


def _audit_shows_generations(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    runs = yield
    _, audit = runs[("audit-config-placement", ())]
    findings = audit["results"]["findings"]
    [evidence] = [
        f["evidence"] for f in findings if (f["check"], f["subject"]) == ("config.generation_matches_deploy", "worker")
    ]
    # generations are configuration, not secrets: shown as they are
    assert "SPECTRAL_GENERATION=2026.11.3" in evidence and "generation 2026.11.2" in evidence, evidence
    assert "REDACTED" not in str(findings)


def _stale_service_stops_before_revoking(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
    old_value = group_env(sbx)["SUPABASE_SECRET_KEY"]
    runs = yield
    [rot] = [rec for (runbook, _), (_, rec) in runs.items() if runbook == "rotate-keys"]
    assert not any(s["step"] == "revoke_old" for s in rot["results"]["steps"])
    assert supabase(sbx).project_accepts(old_value) == (True, 200)  # nothing broke


def _probe(probe: Callable[[Sandbox], None]) -> FollowUp:
    """The misconfiguration itself, seen through S3 (after the catchers: the probe writes to the bucket)."""

    def follow_up(sbx: Sandbox, archive: Path) -> Generator[None, Runs, None]:
        yield
        probe(sbx)

    return follow_up


FOLLOW_UP: dict[str, FollowUp] = {
    **{name: _probe(probe) for name, probe in S3_PROBES.items()},
    "backup-corrupt": _drill_refuses_corrupt_backup,
    "backup-stale": _new_backup_heals,  # after backup-corrupt's (name order)
    "generation-mismatch": _audit_shows_generations,
    "key-on-service": _rotation_blocked_by_key_on_service,
    "pitr-disabled": _pitr_apply_refused_changes_nothing,
    "stale-service": _stale_service_stops_before_revoking,
}


def _group_id(group: tuple[Fault, ...]) -> str:
    return "+".join(f.name for f in group)


@pytest.mark.parametrize("group", GROUPS, ids=_group_id)
def test_each_fault_is_caught_by_its_declared_run(
    group: tuple[Fault, ...], sandbox_factory: Any, archive: Path
) -> None:
    names = [f.name for f in group]
    with sandbox_factory(faults=names, components=components_for(group), set_env=True) as sbx:
        follow_ups = [FOLLOW_UP[n](sbx, archive) for n in names if n in FOLLOW_UP]
        for gen in follow_ups:
            next(gen)
        runs: Runs = {}
        for (runbook, params), catchers in runs_of(group).items():
            runs[(runbook, params)] = outcome, rec = run_runbook(runbook, archive, **dict(params))
            assert_caught(catchers, outcome, rec)
        for gen in follow_ups:
            with pytest.raises(StopIteration):
                gen.send(runs)
        assert_archive_clean(archive, secret_files(sbx))


CLEAN_RUNS = {k: v for k, v in runs_of(tuple(catalogue().values())).items() if "apply" not in dict(k[1])}


@pytest.mark.parametrize("run", list(CLEAN_RUNS), ids=lambda k: k[0])
def test_the_clean_twin_passes_the_catching_runs(run: RunKey, sandbox: Sandbox, archive: Path) -> None:
    """(Apply runs are left out: they change the shared twin; their clean runs are tested in test_keys.)"""
    outcome, rec = run_runbook(run[0], archive, **dict(run[1]))
    assert outcome.status is RunStatus.SUCCEEDED, rec.get("error")
    found = list(rows(rec.get("results", {})))
    for spec in (s for c in CLEAN_RUNS[run] for s in c.checks):
        # the check ran (a passing row may name its subject differently, e.g. a service, not service:variable) ...
        assert any(matches(spec.partition("@")[0], r) for r in found), spec
        # ... and what the fault fails passes here
        assert not [r for r in found if matches(spec, r) and r[2]["status"] in FAILED_STATUSES], spec
