"""End to end: the audit site of an archive whose run tried to leak canary secrets holds none of them.

The leak notebook resolves a secret and puts it everywhere it can (stdout, stderr, logging, DataFrames, HTML,
JSON, a recorded result, an exception message) and prints credential-looking literals; the runner redacts
the archive. The site is built from that archive only, so no byte of any file it writes (pages, data,
state, assets) may hold the secret in any form, nor the literals; neither may the build's own output.
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from urllib.parse import quote

from runner_fixtures import all_bytes, archive_root, nb, run_cli

__all__ = ["archive_root"]

LITERALS = [
    "AKIA" + "Q2W3E4R5T6Y7U8I9",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY9SLOWLEAK1",
    "sb_" + "secret_N0tAReaLKeyButLooksLikeOne123",
    "Hunter2Hunter2",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
]


def forms(value: str) -> list[str]:
    escaped = html.escape(value)
    return [value, escaped, escaped[:20], json.dumps(value)[1:-1], quote(value, safe=""), value[:16], value[:14]]


def test_no_canary_reaches_any_byte_of_the_site(archive_root: Path, tmp_path: Path) -> None:
    canary = f"rbk-canary-{secrets.token_hex(16)}&<Q>'x"
    env = {"RUNBOOKS_TEST_SECRET": canary}
    proc = run_cli("run", nb("leak_secret"), "--archive", str(archive_root), env=env)
    assert proc.returncode == 1, proc.stderr
    proc_ok = run_cli("run", nb("succeed"), "--archive", str(archive_root), env=env)
    assert proc_ok.returncode == 0, proc_ok.stderr
    site = tmp_path / "site"
    build = run_cli("audit", "site", str(site), "--archive", str(archive_root), "--workers", "1", env=env)
    assert build.returncode == 0, build.stdout + build.stderr

    files = all_bytes(site)
    pages = [p for p, _ in files if p.suffix == ".html"]
    assert len([p for p in pages if p.parent.name == "runs"]) == 2 and (site / "index.html") in pages
    for path, data in files:
        for form in forms(canary) + LITERALS:
            assert form.encode() not in data, f"{form!r} leaked into {path}"
    for stream in (build.stdout, build.stderr):
        for form in forms(canary) + LITERALS:
            assert form not in stream
    # ... and the run page does show what the notebook did, redacted: the site hides nothing else
    leak_page = next(p for p in pages if "leak-secret" in p.name)
    text = leak_page.read_text()
    assert "[REDACTED:env:RUNBOOKS_TEST_SECRET]" in text and "could not authenticate with" in text
