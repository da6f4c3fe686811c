"""``runbooks runs list|show|verify|reindex`` through the real typer app."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from runbooks.archive.ledger import Ledger
from runbooks.archive.manifest import RunStatus
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive
from runbooks.cli.main import app
from runbooks.cli.runs import format_duration, parse_since, summarise_result

runner = CliRunner()
NOW = datetime.now(UTC)


def rd(archive: Archive, run_id: str) -> Path:
    """The run's directory (asserting that the archive knows it)."""
    d = archive.run_dir(run_id)
    assert d is not None
    return d


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "runs")
    a.commit(
        sample_manifest(
            "check-dns-posture",
            started_at=NOW - timedelta(days=10),
            environment="production",
            results={"checks": [{"status": "PASS"}, {"status": "FAIL"}, {"status": "PASS"}], "expiring": 0},
        ),
        {"notebook.ipynb": b"{}"},
    )
    a.commit(
        sample_manifest("restore-db", status=RunStatus.FAILED, environment="staging", actor="alice"),
        {"notebook.ipynb": b"{}"},
    )
    a.commit(sample_manifest("rotate-keys", status=RunStatus.REFUSED, started_at=NOW - timedelta(hours=2)), {})
    return a


def invoke(archive: Archive, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["runs", *args, "--archive", str(archive.root)])
    return result.exit_code, result.output


def ids(archive: Archive) -> dict[str, str]:
    return {r.procedure: r.run_id for r in archive.index.query()}


def test_list_table(archive: Archive) -> None:
    code, out = invoke(archive, "list")
    assert code == 0
    assert "3 run(s)" in out
    for rid in ids(archive).values():
        assert rid in out
    assert "alice" in out and "refused" in out


def test_list_json_and_filters(archive: Archive) -> None:
    def listed(*args: str) -> list[str]:
        code, out = invoke(archive, "list", "--json", *args)
        assert code == 0, out
        return [r["procedure"] for r in json.loads(out)]

    assert listed() == ["restore-db", "rotate-keys", "check-dns-posture"]
    assert listed("--status", "failed") == ["restore-db"]
    assert listed("--env", "production") == ["check-dns-posture"]
    assert listed("--procedure", "rotate-keys") == ["rotate-keys"]
    assert listed("--since", "7d") == ["restore-db", "rotate-keys"]
    assert listed("--since", "30m") == ["restore-db"]
    assert listed("--since", (NOW - timedelta(days=11)).date().isoformat()) == listed()
    assert listed("--limit", "1") == ["restore-db"]


def test_list_rejects_bad_options(archive: Archive) -> None:
    assert invoke(archive, "list", "--status", "exploded")[0] == 2
    code, out = invoke(archive, "list", "--since", "last tuesday")
    assert code == 2 and "7d" in out


def test_env_var_selects_archive(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", str(archive.root))
    result = runner.invoke(app, ["runs", "list", "--json"])
    assert result.exit_code == 0 and len(json.loads(result.output)) == 3


def test_list_rebuilds_a_missing_index(archive: Archive) -> None:
    archive.index.path.unlink()
    code, out = invoke(archive, "list", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_show_by_prefix_with_results_summarised(archive: Archive) -> None:
    rid = ids(archive)["check-dns-posture"]
    prefix = rid[: rid.index("-posture")]
    code, out = invoke(archive, "show", prefix)
    assert code == 0, out
    assert rid in out and "production" in out
    assert "3 rows (FAIL 1, PASS 2)" in out
    assert "env:CF_TOKEN" in out  # parameters as given: the reference, not a value
    assert "verified" in out


def test_show_json(archive: Archive) -> None:
    rid = ids(archive)["restore-db"]
    code, out = invoke(archive, "show", rid, "--json")
    data = json.loads(out)
    assert code == 0 and data["run_id"] == rid and data["status"] == "failed"
    assert data["error"]["kind"] == "ValueError" and "notebook.ipynb" in data["files"]


def test_show_unknown_and_ambiguous(archive: Archive) -> None:
    code, out = invoke(archive, "show", "19990101")
    assert code == 1 and "No run matches" in out
    code, out = invoke(archive, "show", "20")
    assert code == 1 and "ambiguous" in out


def test_show_reports_tampering(archive: Archive) -> None:
    rid = ids(archive)["restore-db"]
    (rd(archive, rid) / "notebook.ipynb").write_bytes(b'{"edited": 1}')
    code, out = invoke(archive, "show", rid)
    assert code == 0 and "file_edited" in out


def test_verify_ok_then_tampered(archive: Archive) -> None:
    code, out = invoke(archive, "verify")
    assert code == 0 and "OK: 3 run(s) checked" in out
    rid = ids(archive)["rotate-keys"]
    mpath = rd(archive, rid) / "run.json"
    mpath.write_bytes(mpath.read_bytes().replace(b'"refused"', b'"succeeded"'))
    code, out = invoke(archive, "verify")
    assert code == 1
    assert rid in out and "manifest_edited" in out
    assert invoke(archive, "verify", ids(archive)["restore-db"])[0] == 0
    code, out = invoke(archive, "verify", rid[:24], "--json")
    data = json.loads(out)
    assert code == 1 and not data["ok"] and data["findings"][0]["run_id"] == rid


def test_verify_of_a_run_whose_ledger_line_and_directory_were_deleted(archive: Archive) -> None:
    rid = ids(archive)["restore-db"]
    shutil.rmtree(rd(archive, rid))
    lines = archive.ledger.path.read_bytes().splitlines(keepends=True)
    archive.ledger.path.write_bytes(b"".join(line for line in lines if rid.encode() not in line))
    code, out = invoke(archive, "verify", rid)
    assert code == 1 and "run_not_in_ledger" in out and "OK" not in out
    code, out = invoke(archive, "verify", rid, "--json")
    assert code == 1 and {f["kind"] for f in json.loads(out)["findings"]} >= {"run_not_in_ledger", "index_mismatch"}
    invoke(archive, "reindex")
    code, out = invoke(archive, "verify", rid)  # the index no longer knows it either
    assert code == 1 and "No run matches" in out


def test_verify_detects_edited_index(archive: Archive) -> None:
    rid = ids(archive)["restore-db"]
    with sqlite3.connect(archive.index.path) as conn:
        conn.execute("UPDATE runs SET status = 'succeeded' WHERE run_id = ?", (rid,))
    conn.close()
    code, out = invoke(archive, "verify")
    assert code == 1 and "index_mismatch" in out and rid in out and "reindex" in out
    assert invoke(archive, "reindex")[0] == 0
    assert invoke(archive, "verify")[0] == 0


def test_verify_detects_truncated_ledger(archive: Archive) -> None:
    lines = archive.ledger.path.read_bytes().splitlines(keepends=True)
    archive.ledger.path.write_bytes(b"".join(lines[:-1]))
    code, out = invoke(archive, "verify")
    assert code == 1 and "ledger_truncated" in out


def test_verify_repair_completes_interrupted_commit(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_a: object) -> None:
        raise RuntimeError("crash")

    monkeypatch.setattr(Ledger, "append", crash)
    with pytest.raises(RuntimeError):
        archive.commit(sample_manifest("late"), {})
    monkeypatch.undo()
    assert invoke(archive, "verify")[0] == 1
    code, out = invoke(archive, "verify", "--repair")
    assert code == 0 and "completed the interrupted commit" in out


def test_reindex(archive: Archive) -> None:
    before = archive.index.dump()
    archive.index.path.unlink()
    code, out = invoke(archive, "reindex")
    assert code == 0 and "Indexed 3 run(s)" in out
    assert archive.index.dump() == before


def test_parse_since() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+01:00") == datetime(2026, 11, 1, 9, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        parse_since("yesterday")


def test_summaries() -> None:
    assert format_duration(1.234) == "1.2s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3 * 3600 + 60) == "3h01m"
    assert summarise_result(42) == "42"
    assert summarise_result({"columns": ["status"], "data": [{"status": "WARN"}]}) == "1 rows (WARN 1)"
    assert summarise_result({"status": {"0": "PASS", "1": "FAIL"}}) == "2 rows (FAIL 1, PASS 1)"
    assert summarise_result("x" * 500).startswith("str (502 chars)")


def test_show_prints_text_literally_and_check_rows(tmp_path: Path) -> None:
    """Rich markup is never interpreted: bracketed hostnames and ``[not recorded]`` survive; check rows are listed."""
    a = Archive(tmp_path / "runs")
    m = sample_manifest(
        "check-dns-posture",
        status=RunStatus.FAILED,
        results={
            "checks": [
                {
                    "check": "dns.proxied",
                    "subject": "[app.runspectral.com]",
                    "status": "FAIL",
                    "evidence": "proxied=false [bold]not markup[/bold]",
                    "remediation": "turn the proxy on",
                },
                {"check": "tls.expiry", "subject": "api", "status": "PASS", "evidence": "60 days", "remediation": ""},
            ]
        },
    )
    m = m.model_copy(update={"parameters": {**m.parameters, "hostname": "[not recorded]"}})
    a.commit(m, {})
    code, out = invoke(a, "show", m.run_id)
    assert code == 0, out
    assert "[app.runspectral.com]" in out
    assert "[bold]not markup[/bold]" in out
    assert "[not recorded]" in out and '""' not in out
    assert "checks: check rows" in out
    assert "dns.proxied" in out and "turn the proxy on" in out and "tls.expiry" in out


def test_list_filters_by_actor_trigger_and_until(tmp_path: Path) -> None:
    a = Archive(tmp_path / "runs")
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    a.commit(sample_manifest("p", actor="alice", trigger="manual", started_at=day), {})
    a.commit(sample_manifest("p", actor="bob", trigger="schedule", started_at=day + timedelta(days=1)), {})
    a.commit(sample_manifest("p", actor="alice", trigger="schedule", started_at=day + timedelta(days=2)), {})

    def listed(*args: str) -> list[tuple[str, str, str]]:
        code, out = invoke(a, "list", "--json", *args)
        assert code == 0, out
        return [(r["actor"], r["trigger"], r["started_at"][:10]) for r in json.loads(out)]

    assert listed("--actor", "alice") == [("alice", "schedule", "2026-11-22"), ("alice", "manual", "2026-11-20")]
    assert listed("--trigger", "schedule") == [("alice", "schedule", "2026-11-22"), ("bob", "schedule", "2026-11-21")]
    assert listed("--until", "2026-11-21") == [("bob", "schedule", "2026-11-21"), ("alice", "manual", "2026-11-20")]
    assert listed("--until", "2026-11-21T00:00:00") == [("alice", "manual", "2026-11-20")]
    assert listed("--since", "2026-11-21", "--until", "2026-11-21", "--actor", "bob") == [
        ("bob", "schedule", "2026-11-21")
    ]
    code, out = invoke(a, "list", "--until", "tomorrow")
    assert code != 0 and "--until" in out
