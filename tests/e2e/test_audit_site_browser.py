"""End to end in a real browser: runs executed by the runner, the audit site built by the CLI, and headless
Chromium (Debian's ``chromium``, driven by Playwright) filtering, opening a failed run, reaching its failing
cell and exporting CSV, which must equal ``runbooks runs list --json``.

Chromium must be installed (``make test`` installs it, see the Makefile's ``browser`` target); when it is
missing these tests fail with the command to run, they never skip.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import nb, run_cli

CHROMIUM = os.environ.get("RUNBOOKS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL = "apt-get update && apt-get install -y chromium   (as root; or run `make test`, which does it)"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with `{INSTALL}`", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(archive, site): three real runs (succeeded, failed at a cell, refused), the site built by the CLI."""
    root = tmp_path_factory.mktemp("audit-e2e")
    archive, site = root / "runs", root / "site"
    env = {"RUNBOOKS_ACTOR": "auditor-e2e"}
    for args in (("succeed", "-p", "count=4"), ("raise",), ("succeed", "-p", "count=-x")):
        proc = run_cli("run", nb(args[0]), *args[1:], "--archive", str(archive), env=env)
        assert proc.returncode in (0, 1, 2), proc.stderr
    proc = run_cli("audit", "site", str(site), "--archive", str(archive), "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return archive, site


def runs_list(archive: Path, *args: str) -> list[dict[str, Any]]:
    proc = run_cli("runs", "list", "--json", "--limit", "0", "--archive", str(archive), *args)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def js_string(value: Any) -> str:
    """How the page writes a JSON value into CSV (JavaScript's String(), null as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.fixture
def page(browser: Any, built: tuple[Path, Path]) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.goto((built[1] / "index.html").as_uri())
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    context.close()
    assert not errors, errors  # no script error, no CSP violation of our own scripts


def test_filter_by_status(page: Any, built: tuple[Path, Path]) -> None:
    archive, _ = built
    assert page.locator("#runs tbody tr").count() == 3
    page.select_option("#f-status", "failed")
    rows = page.locator("#runs tbody tr")
    expected = runs_list(archive, "--status", "failed")
    assert rows.count() == len(expected) == 1
    assert rows.first.get_attribute("data-run") == expected[0]["run_id"]
    assert "status=failed" in page.url  # the filter is in the address: a link reproduces the view
    page.locator("#counts button[data-status='refused']").click()
    assert page.locator("#runs tbody tr").count() == len(runs_list(archive, "--status", "refused")) == 1


def test_open_the_failed_run_and_reach_its_failing_cell(page: Any, built: tuple[Path, Path]) -> None:
    (failed,) = runs_list(built[0], "--status", "failed")
    page.select_option("#f-status", "failed")
    page.locator(f"#runs tbody tr[data-run='{failed['run_id']}'] a").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"runs/{failed['run_id']}.html")
    assert page.locator("#error").inner_text().startswith("ValueError at cell")
    banner = page.locator("#verify-banner")
    assert "Archive intact" in banner.inner_text()  # filled by the page's script from data/verify.js
    page.locator("#failing-cell-link").click()
    cell = page.locator(":target")
    assert cell.get_attribute("class") == "nb-cell nb-code nb-failed"
    assert page.url.endswith(f"#{cell.get_attribute('id')}")
    assert "boom: the step failed" in cell.inner_text()
    assert cell.is_visible() and cell.evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }"
    )


def test_export_csv_equals_runs_list_json(page: Any, built: tuple[Path, Path]) -> None:
    archive, _ = built
    for status, args in ((None, ()), ("succeeded", ("--status", "succeeded"))):
        if status:
            page.select_option("#f-status", status)
        with page.expect_download() as info:
            page.click("#export-csv")
        text = Path(info.value.path()).read_text(encoding="utf-8")
        exported = list(csv.DictReader(io.StringIO(text)))
        expected = runs_list(archive, *args)
        assert len(exported) == len(expected) > 0
        assert list(exported[0]) == list(expected[0])  # same columns, same order
        assert exported == [{k: js_string(v) for k, v in row.items()} for row in expected]
    with page.expect_download() as info:
        page.click("#export-json")
    assert json.loads(Path(info.value.path()).read_text()) == runs_list(archive, "--status", "succeeded")


def test_a_script_in_a_notebook_output_does_not_run(browser: Any, tmp_path: Path) -> None:
    """Outputs are inserted as archived; the pages' Content-Security-Policy runs only the site's own scripts."""
    from runbooks.archive.store import Archive
    from runbooks.audit.build import build_site
    from runbooks.audit.samples import sample_notebook, sample_runs

    archive = Archive(tmp_path / "runs")
    (m,) = list(sample_runs(1))
    nbj = json.loads(sample_notebook(m))
    hostile = "<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED2'\">"
    nbj["cells"][3]["outputs"].append({"output_type": "display_data", "data": {"text/html": hostile}, "metadata": {}})
    archive.commit(m, {"notebook.ipynb": json.dumps(nbj).encode()})
    build_site(tmp_path / "site", archive.root, workers=1)
    context = browser.new_context()
    pg = context.new_page()
    pg.goto((tmp_path / "site" / "runs" / f"{m.run_id}.html").as_uri())
    pg.wait_for_load_state("load")
    assert "<script>document.title='PWNED'</script>" in (tmp_path / "site" / "runs" / f"{m.run_id}.html").read_text()
    assert "PWNED" not in pg.title()
    assert "Archive intact" in pg.locator("#verify-banner").inner_text()  # our own script did run
    context.close()


def test_compare_any_two_runs_on_the_procedure_page(browser: Any, tmp_path: Path) -> None:
    """The procedure page's compare box gives the findings diff of the two runs chosen (same rules as the build)."""
    from runbooks.archive.store import Archive
    from runbooks.audit.build import build_site
    from runbooks.audit.diff import diff_findings
    from runbooks.audit.results import check_outcomes
    from runbooks.audit.samples import commit_runs, sample_runs

    runs = [m for m in sample_runs(30, seed=10) if m.procedure == "check-dns-posture" and m.environment == "production"]
    archive = Archive(tmp_path / "runs")
    commit_runs(archive, runs)
    build_site(tmp_path / "site", archive.root, workers=1)
    older, newer = runs[0], next(m for m in runs if m.status.value == "failed")
    expected = diff_findings(
        {o.key: o.status for o in check_outcomes(older.results)},
        {o.key: o.status for o in check_outcomes(newer.results)},
    )
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.goto((tmp_path / "site" / "procedures" / "check-dns-posture.html").as_uri())
    box = pg.locator("#env-production .compare")
    box.locator(".cmp-a").select_option(label=f"{older.started_at:%Y-%m-%d %H:%M:%S}Z  {older.run_id}")
    box.locator(".cmp-b").select_option(label=f"{newer.started_at:%Y-%m-%d %H:%M:%S}Z  {newer.run_id}")
    started = box.locator(".cmp-out li.started").all_inner_texts()
    assert started == [f"started failing: {c.key} ({c.before} → {c.after})" for c in expected.started_failing]
    assert any("tls.expiry / app.runspectral.com" in t for t in started)
    assert box.locator(".cmp-out li.changed").count() == len(expected.changed)
    assert not errors, errors
    context.close()
