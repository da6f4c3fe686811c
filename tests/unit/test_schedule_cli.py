"""``runbooks schedule list|blueprint|compliance`` through the real typer app, on an empty archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.inventory import load
from runbooks.schedule.blueprint import render_yaml
from runbooks.schedule.catalogue import resolve

runner = CliRunner()


@pytest.fixture(autouse=True)
def empty_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_list_shows_cron_next_runs_and_no_last_run() -> None:
    res = runner.invoke(app, ["schedule", "list", "--env", "production", "--now", "2026-11-30T23:50:00Z", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    rows = {r["procedure"]: r for r in body["schedules"]}
    assert rows["check-dns-posture"]["next_runs"] == [
        "2026-12-01T00:00:00+00:00",
        "2026-12-01T00:30:00+00:00",
        "2026-12-01T01:00:00+00:00",
    ]
    assert rows["restore-drill"]["next_runs"][0] == "2026-12-06T05:30:00+00:00"
    assert all(r["last_run"] is None for r in rows.values()) and body["cron_jobs_drift"] == []
    table = runner.invoke(app, ["schedule", "list", "--env", "production"])
    assert table.exit_code == 0 and "*/30 * * * *" in table.output


def test_blueprint_prints_the_render_yaml() -> None:
    res = runner.invoke(app, ["schedule", "blueprint", "--env", "production"])
    assert res.exit_code == 0, res.output
    env = load("production")
    assert res.output == render_yaml(env, resolve(env))


def test_compliance_of_an_empty_archive_reports_missed_slots() -> None:
    args = ["schedule", "compliance", "--env", "production", "--since", "2026-11-29T00:00:00Z"]
    res = runner.invoke(app, [*args, "--now", "2026-11-30T00:00:00Z", "--only", "nightly-backup", "--json"])
    assert res.exit_code == 1, res.output
    body = json.loads(res.output)
    assert body["compliant"] is False and body["summary"]["nightly-backup"]["missed"] == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schedule", "list", "--env", "prod"], "unknown environment 'prod'"),
        (["schedule", "list", "--env", "production", "--now", "yesterday"], "--now 'yesterday'"),
        (["schedule", "run-due", "--env", "production", "--only", "rotate-keys"], "--only rotate-keys"),
        (["schedule", "compliance", "--env", "production", "--since", "2030-01-01"], "--since 2030-01-01"),
    ],
)
def test_bad_input_is_refused_with_the_fix(args: list[str], needle: str, empty_archive: Path) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and needle in res.output, res.output
    assert not (empty_archive / "schedule").exists()  # nothing was claimed
