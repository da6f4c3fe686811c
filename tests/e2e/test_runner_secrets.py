"""End to end: a notebook that does its best to leak a secret; no byte of it may reach the disk or the log."""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest
from runner_fixtures import all_bytes, archive_root, manifest, nb, notebook, run_cli, run_dirs

__all__ = ["archive_root"]

LITERALS = [
    "AKIA" + "Q2W3E4R5T6Y7U8I9",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY9SLOWLEAK1",
    "sb_" + "secret_N0tAReaLKeyButLooksLikeOne123",
    "Hunter2Hunter2",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
]


#: longer than pandas' 50-character cell, with an '&' inside the part a truncated HTML cell keeps
REV_SECRET = "Abcdefghijklmn&opqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-tail"


def _forms(value: str) -> list[str]:
    escaped = html.escape(value)
    return [value, escaped, escaped[:20], json.dumps(value)[1:-1], quote(value, safe=""), value[:16], value[:14]]


@pytest.mark.parametrize("value", [f"rbk-{secrets.token_hex(16)}&<Q>'x", REV_SECRET], ids=["random", "long-escaped"])
def test_secret_never_reaches_archive_ledger_index_or_log(archive_root: Path, value: str) -> None:
    proc = run_cli("run", nb("leak_secret"), "--archive", str(archive_root), env={"RUNBOOKS_TEST_SECRET": value})
    assert proc.returncode == 1, proc.stderr  # the last cell raises with the value in its message
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "failed" and m["error"]["kind"] == "RuntimeError"
    assert m["error"]["message"] == "could not authenticate with [REDACTED:env:RUNBOOKS_TEST_SECRET]"
    assert m["parameters"] == {"environment": "sandbox"}
    assert m["results"]["leak"] == {
        "token": "[REDACTED:env:RUNBOOKS_TEST_SECRET]",
        "rows": ["[REDACTED:env:RUNBOOKS_TEST_SECRET]"],
    }
    # every byte of every file of the archive: run dir, ledger, ledger head, sqlite index, locks
    files = all_bytes(archive_root)
    assert any(p.name == "ledger.jsonl" for p, _ in files) and any(p.suffix == ".sqlite" for p, _ in files)
    for path, data in files:
        for form in _forms(value) + LITERALS:
            assert form.encode() not in data, f"{form!r} leaked into {path}"
    for stream in (proc.stdout, proc.stderr):
        for form in _forms(value) + LITERALS:
            assert form not in stream
    # ... and the notebook did put it everywhere: stdout, stderr, logging, fd-level, DataFrame, HTML, JSON
    text = json.dumps(notebook(run_dir), ensure_ascii=False)
    marker = "[REDACTED:env:RUNBOOKS_TEST_SECRET]"
    for where in ("stdout: ", "stderr: ", "log: ", "fd-level: ", "subprocess: ", "<b>"):
        assert where + marker in text, where
    assert text.count(marker) >= 10
    assert "postgresql://app:[REDACTED]@db.internal:5432/app" in text
    assert "aws_secret_access_key = [REDACTED]" in text


def test_secret_resolution_failure_names_ref_not_value(archive_root: Path) -> None:
    ref = "token_ref=env:RUNBOOKS_TEST_NOT_SET"
    proc = run_cli("run", nb("leak_secret"), "-p", ref, "--archive", str(archive_root))
    assert proc.returncode == 1
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["error"]["kind"] == "SecretError"
    assert "env:RUNBOOKS_TEST_NOT_SET" in m["error"]["message"] and "not set" in m["error"]["message"]
    assert m["parameters"]["token_ref"] == "env:RUNBOOKS_TEST_NOT_SET"  # recorded as given: a reference
