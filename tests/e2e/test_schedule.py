"""Scheduled runs end to end on a twin (postgres, s3, supabase with a stale backup, the alert receivers):
``runbooks schedule run-due`` at successive instants (``--now``), two concurrent calls, alerts at the local
Slack-compatible and PagerDuty receivers (trigger, undeliverable, resolve), and ``compliance`` over the result.

One scenario in order (each step builds on the previous one's archive and claims):

- 12-01 03:48: two concurrent run-due calls for verify-backup-posture: one run, which fails (the twin's latest
  backup is three days old): one Slack and one PagerDuty trigger, both delivered and recorded in the run;
- 12-01 04:00: nightly-backup's first slot (03:17) runs and takes a fresh backup; verify's slot is done;
- 12-01 04:10: nothing is due;
- 12-02 03:50: both slots run; verify succeeds and resolves: PagerDuty's resolve is delivered, the Slack
  receiver fails three times (told to), so the run's record says that notification was not delivered;
- 12-04 03:50 (verify only): 12-03 was missed (recorded and announced), 12-04 runs;
- compliance from 12-01 to 12-04 03:55 reports each verdict, the missed slot among them, and exits 1.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_fixtures import cli_cmd, manifest, run_cli, run_dirs

from runbooks.sandbox.fixture import Sandbox, running_sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
VERIFY, NIGHTLY = "verify-backup-posture", "nightly-backup"
DEDUP = f"runbooks/sandbox/{VERIFY}"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("schedule-twin")
    with running_sandbox(root, faults=["backup-stale"], components=["supabase", "alerts"], set_env=True) as sbx:
        yield sbx


def received(sbx: Sandbox) -> list[dict[str, Any]]:
    return httpx.get(f"{sbx.address('alerts')}/__twin/requests", timeout=5).json()["requests"]


def run_due(now: str, *only: str) -> subprocess.CompletedProcess[str]:
    args = ["schedule", "run-due", "--env", "sandbox", "--now", now, "--json"]
    for name in only:
        args += ["--only", name]
    return run_cli(*args, timeout=900)


def actions(proc: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str, str | None]]:
    assert proc.stdout.strip().startswith("["), (proc.returncode, proc.stdout, proc.stderr)
    return [(a["procedure"], a["slot"], a["action"], a["status"]) for a in json.loads(proc.stdout)]


def runs_of(archive: Path) -> list[dict[str, Any]]:
    return [manifest(d) for d in run_dirs(archive)]


def test_run_due_alerts_resolve_and_compliance(twin: Sandbox, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = [twin.secret("alert_slack_webhook_url"), twin.secret("alert_pagerduty_routing_key")]

    # 1. two run-due calls at the same instant: the slot runs once, and fails on the stale backup
    procs = [
        subprocess.Popen(
            cli_cmd(
                "schedule", "run-due", "--env", "sandbox", "--now", "2026-12-01T03:48:00Z", "--only", VERIFY, "--json"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    done = sorted((json.loads(o) for o, _ in outs), key=len)
    assert done[0] == [] and [(a["slot"], a["status"]) for a in done[1]] == [("20261201T0347Z", "failed")]
    assert sorted(p.returncode for p in procs) == [0, 1]
    (failed,) = runs_of(archive)
    assert failed["trigger"] == "schedule" and failed["status"] == "failed"
    assert [(a["channel"], a["action"], a["delivered"]) for a in failed["results"]["alerts"]] == [
        ("slack", "trigger", True),
        ("pagerduty", "trigger", True),
    ]
    got = received(twin)
    assert [(r["format"], r["status"]) for r in got] == [("slack", 200), ("pagerduty", 202)]
    slack, pd = got[0]["body"], got[1]["body"]
    assert f"scheduled {VERIFY}: failed" in slack["text"] and failed["run_id"] in slack["text"]
    assert "backup" in slack["text"] and f"runbooks runs show {failed['run_id']}" in slack["text"]
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == DEDUP
    assert pd["payload"]["custom_details"]["failing_checks"][0]["remediation"]

    # 2. the next instants: only what is due runs, once
    assert actions(run_due("2026-12-01T04:00:00Z", VERIFY, NIGHTLY)) == [
        (NIGHTLY, "20261201T0317Z", "run", "succeeded")
    ]
    assert actions(run_due("2026-12-01T04:10:00Z", VERIFY, NIGHTLY)) == []
    assert len(received(twin)) == 2  # a success with no open incident notifies nobody

    # 3. a clean run resolves; the Slack receiver is down for three attempts: recorded as not delivered
    httpx.post(f"{twin.address('alerts')}/__twin/fail", json={"count": 3}, timeout=5).raise_for_status()
    assert actions(run_due("2026-12-02T03:50:00Z", VERIFY, NIGHTLY)) == [
        (NIGHTLY, "20261202T0317Z", "run", "succeeded"),
        (VERIFY, "20261202T0347Z", "run", "succeeded"),
    ]
    clean = runs_of(archive)[-1]
    assert clean["procedure"] == VERIFY and clean["status"] == "succeeded"
    alerts = {a["channel"]: a for a in clean["results"]["alerts"]}
    assert alerts["pagerduty"]["action"] == "resolve" and alerts["pagerduty"]["delivered"] is True
    assert alerts["slack"]["delivered"] is False and alerts["slack"]["attempts"] == 3
    assert "HTTP 503" in alerts["slack"]["error"]
    resolve = [r for r in received(twin) if r["format"] == "pagerduty" and r["body"]["event_action"] == "resolve"]
    assert [r["body"]["dedup_key"] for r in resolve] == [DEDUP]

    # 4. a missed slot: recorded, announced, and the latest slot caught up
    before = len(received(twin))
    assert actions(run_due("2026-12-04T03:50:00Z", VERIFY)) == [
        (VERIFY, "20261203T0347Z", "missed", None),
        (VERIFY, "20261204T0347Z", "run", "succeeded"),
    ]
    missed_alerts = [r for r in received(twin)[before:] if r["status"] < 300]
    assert any(
        r["format"] == "pagerduty" and r["body"].get("payload", {}).get("class") == "missed" for r in missed_alerts
    )
    assert any(r["format"] == "slack" and "20261203T0347Z" in r["body"]["text"] for r in missed_alerts)

    # 5. compliance: every slot of the period, the missed one among them
    proc = run_cli(
        "schedule",
        "compliance",
        "--env",
        "sandbox",
        "--since",
        "2026-12-01T00:00:00Z",
        "--now",
        "2026-12-04T03:55:00Z",
        "--only",
        VERIFY,
        "--only",
        NIGHTLY,
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    verdicts = {(s["procedure"], s["slot"][:10]): s["verdict"] for s in report["slots"]}
    assert verdicts == {
        (VERIFY, "2026-12-01"): "failed",
        (VERIFY, "2026-12-02"): "on_time",
        (VERIFY, "2026-12-03"): "missed",
        (VERIFY, "2026-12-04"): "on_time",
        (NIGHTLY, "2026-12-01"): "late",  # claimed at 04:00 for 03:17: beyond the 15-minute tolerance
        (NIGHTLY, "2026-12-02"): "late",
        (NIGHTLY, "2026-12-03"): "missed",
        (NIGHTLY, "2026-12-04"): "missed",
    }
    assert report["compliant"] is False

    # no secret of the alert channels anywhere in the archive
    for path in archive.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path

    # claims and incident state live beside the runs; the archive still verifies
    verify = run_cli("runs", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
