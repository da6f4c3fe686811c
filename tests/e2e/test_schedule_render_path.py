"""The Render cron job's start command, ``runbooks run NAME --env ENV --trigger schedule``: a failing scheduled
run alerts through the same hook as run-due (here against the twin's alert receivers, run alone), and the
run's record lists the notifications; a manual run alerts nobody."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from runner_fixtures import manifest, nb, run_cli, run_dirs

from runbooks.paths import inventory_dir
from runbooks.sandbox.component import free_port


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "twin"
    (root / "secrets").mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbooks.sandbox.emulators.alerts", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/__twin/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_scheduled_cli_run_alerts_and_records_it(
    receivers: str, tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "twin"
    webhook = f"{receivers}/slack/services/T0/B0/{secrets.token_hex(8)}"
    key = secrets.token_hex(16)
    (root / "secrets" / "alert_slack_webhook_url").write_text(webhook)
    (root / "secrets" / "alert_pagerduty_routing_key").write_text(key)
    inv = tmp_path / "inventory"
    shutil.copytree(inventory_dir(), inv)
    staging = yaml.safe_load((inv / "staging.yaml").read_text())
    staging["schedules"]["alerts"] = {
        "slack_webhook": "env:TEST_ALERT_WEBHOOK",
        "pagerduty_routing_key": "env:TEST_ALERT_KEY",
        "pagerduty_events_url": f"{receivers}/v2/enqueue",
        "backoff_seconds": 0,
    }
    (inv / "staging.yaml").write_text(yaml.safe_dump(staging))
    env = {"RUNBOOKS_INVENTORY": str(inv), "TEST_ALERT_WEBHOOK": webhook, "TEST_ALERT_KEY": key}

    manual = run_cli("run", nb("raise"), "--env", "staging", env=env)
    assert manual.returncode == 1, manual.stderr
    assert httpx.get(f"{receivers}/__twin/requests").json()["requests"] == []

    proc = run_cli("run", nb("raise"), "--env", "staging", "--trigger", "schedule", env=env)
    assert proc.returncode == 1, proc.stderr
    record = manifest(run_dirs(archive)[-1])
    assert record["trigger"] == "schedule" and record["status"] == "failed"
    assert [(a["channel"], a["delivered"]) for a in record["results"]["alerts"]] == [
        ("slack", True),
        ("pagerduty", True),
    ]
    got = httpx.get(f"{receivers}/__twin/requests").json()
    assert [(r["format"], r["status"]) for r in got["requests"]] == [("slack", 200), ("pagerduty", 202)]
    assert record["run_id"] in got["requests"][0]["body"]["text"]
    assert got["open_incidents"] == ["runbooks/staging/raise"]
    text = json.dumps(record) + proc.stdout + proc.stderr
    assert webhook not in text and key not in text


def test_on_end_hook_sees_the_run_and_its_text_is_scrubbed(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's hook: called once with the ended run, before the commit; what it returns is recorded,
    scrubbed of every secret the kernel resolved; a hook that raises costs nothing but an ``on_end_error``."""
    from runbooks.runner.run import RunEnd, run_procedure

    secret = "hook-" + secrets.token_hex(12)
    monkeypatch.setenv("RUNBOOKS_TEST_SECRET", secret)
    seen: list[RunEnd] = []

    def hook(end: RunEnd) -> dict[str, str]:
        seen.append(end)
        return {"hook_note": end.scrub(f"saw {end.results['leak']['token']}"), "raw": secret}

    out = run_procedure(nb("leak_secret"), environment="sandbox", trigger="schedule", archive_root=archive, on_end=hook)
    (end,) = seen
    assert (end.run_id, end.trigger, end.status.value) == (out.run_id, "schedule", out.status.value)
    record = manifest(Path(out.run_dir))  # type: ignore[arg-type]
    assert record["results"]["hook_note"].startswith("saw [REDACTED")
    assert secret not in json.dumps(record)  # even what the hook returned unscrubbed

    def broken(end: RunEnd) -> dict[str, str]:
        raise RuntimeError("hook bug")

    out = run_procedure(nb("succeed"), environment="sandbox", archive_root=archive, on_end=broken)
    record = manifest(Path(out.run_dir))  # type: ignore[arg-type]
    assert out.status.value == "succeeded" and record["results"]["on_end_error"] == "RuntimeError: hook bug"


@pytest.mark.sandbox
def test_alerts_unreachable_fault_makes_delivery_fail(sandbox_factory: Any, tmp_path: Path) -> None:
    from runbooks.schedule.alerts.notify import after_missed

    with sandbox_factory(faults=["alerts-unreachable"], components=["alerts"], set_env=True) as sbx:
        sent = after_missed(
            procedure="nightly-backup", environment="sandbox", slots=["20261130T0317Z"], archive_root=tmp_path
        )
        assert [(d.channel, d.delivered, d.attempts) for d in sent] == [("slack", False, 3), ("pagerduty", False, 3)]
        got = httpx.get(f"{sbx.address('alerts')}/__twin/requests").json()["requests"]
        assert len(got) == 6 and {r["status"] for r in got} == {503}
