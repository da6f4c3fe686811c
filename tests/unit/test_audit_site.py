"""The audit site built from a synthetic archive: pages, data, incremental rebuilds, the verify banner, bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks.archive.manifest import RunStatus
from runbooks.archive.store import Archive
from runbooks.audit.build import STATE_NAME, SiteError, build_site
from runbooks.audit.samples import commit_runs, sample_notebook, sample_runs
from runbooks.cli.main import app

cli = CliRunner()
SEED = 10  #: a sample with failed check-dns-posture runs (a FAIL to draw) and a refusal


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "runs")
    commit_runs(a, sample_runs(30, seed=SEED))
    return a


def site_rows(site: Path) -> list[dict[str, object]]:
    """The exported rows the index page holds (data/runs.js), as ``runs list --json`` objects."""
    text = (site / "data" / "runs.js").read_text()
    data = json.loads(text.removeprefix("window.AUDIT_RUNS = ").rstrip().removesuffix(";"))
    return [dict(zip(data["fields"], row, strict=False)) for row in data["rows"]]


def test_build_writes_every_page_and_the_list_equals_runs_list_json(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    report = build_site(site, archive.root, workers=1)
    assert report.runs == 30 and report.verify_ok
    ids = [e.run_id for e in archive.ledger.entries()]
    for rid in ids:
        assert (site / "runs" / f"{rid}.html").is_file()
    for name in ("index.html", "data/runs.js", "data/verify.js", "assets/site.css", "assets/index.js"):
        assert (site / name).is_file(), name
    for proc in {m.procedure for m in sample_runs(30, seed=SEED)}:
        assert (site / "procedures" / f"{proc}.html").is_file()
    result = cli.invoke(app, ["runs", "list", "--json", "--limit", "0", "--archive", str(archive.root)])
    assert site_rows(site) == json.loads(result.output)
    assert "Archive intact" in (site / "index.html").read_text()


def test_run_page_links_the_failing_cell_and_shows_check_rows(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, archive.root, workers=1)
    failed = next(r for r in site_rows(site) if r["status"] == "failed" and r["procedure"] == "check-dns-posture")
    page = (site / "runs" / f"{failed['run_id']}.html").read_text()
    assert 'href="#cell-6" id="failing-cell-link"' in page
    assert 'class="nb-cell nb-code nb-failed" id="cell-6"' in page
    assert 'class="ck-row ck-FAIL"' in page and "renew the certificate at the edge" in page
    assert "[app.runspectral.com]" in page  # text kept literally (escaped, not swallowed)
    assert "<th>exit code</th><td>1</td>" in page
    assert "started failing" in page or "first run of" in page
    assert f"#{failed['path']}" not in page and str(failed["manifest_sha256"]) in page


def test_procedure_page_draws_check_timelines_trends_and_diffs(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, archive.root, workers=1)
    dns = (site / "procedures" / "check-dns-posture.html").read_text()
    assert dns.count('<svg class="strip"') > 10 and 'data-status="FAIL"' in dns
    assert "Findings diff" in dns and "tls.expiry / app.runspectral.com" in dns
    assert dns.count('class="compare-data"') == 3  # one compare box per environment
    drill = (site / "procedures" / "restore-drill.html").read_text()
    assert "RTO trend" in drill and "RPO trend" in drill and '<polyline fill="none"' in drill
    backup = (site / "procedures" / "nightly-backup.html").read_text()
    assert "backup size trend" in backup and "MiB" in backup


def test_rebuild_rewrites_only_what_changed(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, archive.root, workers=1)
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*.html")}
    again = build_site(site, archive.root, workers=1)
    assert again.written == ["data/verify.js"]  # the verdict's time; nothing else changed
    assert again.rehashed == 0 and again.verify_ok

    extra = next(iter(sample_runs(1, seed=99)))
    latest = max(r.started_at for r in sample_runs(30, seed=SEED))
    extra = extra.model_copy(update={"started_at": latest + timedelta(hours=1), "environment": "production"})
    extra = extra.model_copy(update={"ended_at": extra.started_at + timedelta(seconds=5)})
    archive.commit(extra, {"notebook.ipynb": sample_notebook(extra)})
    third = build_site(site, archive.root, workers=1)
    prev = max(
        (r for r in site_rows(site) if r["procedure"] == extra.procedure and r["environment"] == "production"),
        key=lambda r: str(r["started_at"]) if r["run_id"] != extra.run_id else "",
    )
    written = set(third.written)
    assert f"runs/{extra.run_id}.html" in written and f"runs/{prev['run_id']}.html" in written
    assert {"data/runs.js", "index.html", f"procedures/{extra.procedure}.html"} <= written
    assert not any(w.startswith("procedures/") and extra.procedure not in w for w in written)
    assert len([w for w in written if w.startswith("runs/")]) == 2
    assert third.rehashed == 1  # only the new run's files were hashed
    untouched = [p for p in before if p.name not in {f"{extra.run_id}.html", f"{prev['run_id']}.html"}]
    assert all(p.stat().st_mtime_ns == before[p] for p in untouched if "runs" in p.parts)


def test_tampering_shows_in_the_banner_and_the_run_page_data(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, archive.root, workers=1)
    entry = archive.ledger.entries()[4]
    nb = archive.root / entry.path / "notebook.ipynb"
    nb.write_bytes(nb.read_bytes().replace(b"rows", b"ROWS"))
    report = build_site(site, archive.root, workers=1)
    assert not report.verify_ok and report.rehashed == 1  # the edit changed the file: re-hashed, found
    index = (site / "index.html").read_text()
    assert "Archive NOT intact: 1 finding(s)" in index and "file_edited" in index and entry.run_id in index
    verdict = (site / "data" / "verify.js").read_text()
    assert entry.run_id in verdict and '"ok":false' in verdict
    result = cli.invoke(app, ["audit", "site", str(site), "--archive", str(archive.root), "--workers", "1"])
    assert result.exit_code == 1 and "archive NOT intact: 1 finding(s)" in result.output  # built, and says so


def add_run(archive: Archive) -> str:
    extra = next(iter(sample_runs(1, seed=99)))
    latest = max(r.started_at for r in sample_runs(30, seed=SEED))
    extra = extra.model_copy(update={"started_at": latest + timedelta(hours=1), "environment": "production"})
    extra = extra.model_copy(update={"ended_at": extra.started_at + timedelta(seconds=5)})
    archive.commit(extra, {"notebook.ipynb": sample_notebook(extra)})
    return extra.run_id


def test_tampering_with_an_old_run_then_adding_a_run_is_caught(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert build_site(site, archive.root, workers=1).verify_ok
    old = archive.ledger.entries()[3]
    manifest = archive.root / old.path / "run.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"actor":"', b'"actor":"x'))
    new = add_run(archive)
    report = build_site(site, archive.root, workers=1)
    assert not report.verify_ok and report.rehashed == 2  # the tampered run and the new one
    verdict = (site / "data" / "verify.js").read_text()
    assert old.run_id in verdict and "manifest_edited" in verdict and new not in verdict
    assert f"runs/{new}.html" in report.written
    again = build_site(site, archive.root, workers=1)  # still caught on the next build (no clean checkpoint)
    assert not again.verify_ok and old.run_id in (site / "data" / "verify.js").read_text()


def test_full_verify_rehashes_everything(archive: Archive, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, archive.root, workers=1)
    assert build_site(site, archive.root, workers=1, full_verify=True).rehashed == 30


def test_compliance_page_when_data_is_given(archive: Archive, tmp_path: Path) -> None:
    run_id = archive.ledger.entries()[0].run_id
    data = {
        "generated_at": "2026-01-03T00:00:00Z",
        "schedules": [
            {
                "procedure": "nightly-backup",
                "environment": "production",
                "cron": "17 3 * * *",
                "slots": [
                    {"due": "2026-01-01T03:17:00Z", "status": "ran", "run_id": run_id},
                    {"due": "2026-01-02T03:17:00Z", "status": "missed", "detail": "no run in the window"},
                    {"due": "2026-01-03T03:17:00Z", "status": "late", "run_id": "x", "detail": "41 min late"},
                ],
            }
        ],
    }
    cfile = tmp_path / "compliance.json"
    cfile.write_text(json.dumps(data))
    site = tmp_path / "site"
    build_site(site, archive.root, compliance_file=cfile, workers=1)
    page = (site / "compliance.html").read_text()
    assert "nightly-backup on production" in page and "no run in the window" in page and "41 min late" in page
    assert 'class="badge sl-missed">missed</span> 1' in page
    assert 'href="compliance.html"' in (site / "index.html").read_text()
    build_site(site, archive.root, workers=1)  # without the data: the page goes
    assert not (site / "compliance.html").exists()


def test_the_schedule_compliance_report_is_taken_as_it_is(archive: Archive, tmp_path: Path) -> None:
    """``runbooks schedule compliance --json`` output feeds the page directly: on_time -> ran, pending left out."""
    from datetime import UTC, datetime

    from runbooks.schedule.compliance import SlotVerdict

    run_id = archive.ledger.entries()[0].run_id
    day = datetime(2026, 1, 1, 3, 17, tzinfo=UTC)
    verdicts = [
        SlotVerdict("nightly-backup", day, "on_time", run_id, "succeeded", 12.0),
        SlotVerdict("nightly-backup", day + timedelta(days=1), "missed"),
        SlotVerdict("nightly-backup", day + timedelta(days=2), "failed", "r-failed", "failed", 3.0),
        SlotVerdict("nightly-backup", day + timedelta(days=3), "pending"),
    ]
    report = {
        "environment": "production",
        "until": "2026-01-04T04:00:00+00:00",
        "compliant": False,
        "slots": [v.as_dict() for v in verdicts],
    }
    cfile = tmp_path / "report.json"
    cfile.write_text(json.dumps(report))
    site = tmp_path / "site"
    build_site(site, archive.root, compliance_file=cfile, workers=1)
    page = (site / "compliance.html").read_text()
    assert "nightly-backup on production" in page and "run status failed" in page
    for status in ("ran", "missed", "failed"):
        assert f'class="badge sl-{status}">{status}</span> 1' in page
    assert "2026-01-04" not in page.split("nightly-backup on production", 1)[1]  # the pending slot is not shown


def test_bad_input_is_refused_naming_the_option_and_changing_nothing(archive: Archive, tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="--archive"):
        build_site(tmp_path / "site", tmp_path / "nowhere")
    assert not (tmp_path / "site").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(SiteError, match="not empty"):
        build_site(busy, archive.root)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schedules": [{"procedure": "p", "environment": "e", "slots": [{"due": "x"}]}]}))
    result = cli.invoke(
        app, ["audit", "site", str(tmp_path / "s2"), "--archive", str(archive.root), "--compliance", str(bad)]
    )
    assert result.exit_code == 2
    assert "--compliance" in result.output and "schedules.0.slots.0" in result.output
    assert not (tmp_path / "s2").exists()


def test_cli_builds_and_reports(archive: Archive, tmp_path: Path) -> None:
    result = cli.invoke(
        app, ["audit", "site", str(tmp_path / "site"), "--archive", str(archive.root), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "30 run(s)" in result.output and "archive intact" in result.output
    assert (tmp_path / "site" / STATE_NAME).is_file()


def test_refused_run_without_notebook_has_a_page(tmp_path: Path) -> None:
    a = Archive(tmp_path / "runs")
    (m,) = [r for r in sample_runs(60, seed=5) if r.status is RunStatus.REFUSED][:1]
    a.commit(m, {})
    build_site(tmp_path / "site", a.root, workers=1)
    page = (tmp_path / "site" / "runs" / f"{m.run_id}.html").read_text()
    assert "archived no notebook" in page
