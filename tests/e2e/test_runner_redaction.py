"""End to end, issue 9 (secrets that still reached disk): notebooks run through the runner; the archive, the
ledger, the index and the runner's own output must hold no byte of a secret or of a refused value."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import nbformat
import pytest
from runner_fixtures import all_bytes, archive_root, manifest, nb, notebook, run_cli, run_dirs

__all__ = ["archive_root"]


def _windows(value: str, size: int = 8) -> list[str]:
    return [value[i : i + size] for i in range(len(value) - size + 1)]


def _assert_nowhere(archive: Path, streams: tuple[str, ...], needles: list[str]) -> None:
    files = all_bytes(archive)
    assert any(p.suffix == ".sqlite" for p, _ in files)
    for path, data in files:
        for needle in needles:
            assert needle.encode() not in data, f"{needle!r} leaked into {path}"
    for stream in streams:
        for needle in needles:
            assert needle not in stream


def test_split_numeric_multi_line_and_long_messages_never_reach_the_archive(archive_root: Path, tmp_path: Path) -> None:
    value = "rbk-" + secrets.token_urlsafe(24)
    pin = str(10**9 + secrets.randbelow(9 * 10**9))
    lines = ["first-line-" + secrets.token_urlsafe(12), "second-line-" + secrets.token_urlsafe(12)]
    pem = tmp_path / "two-lines.txt"
    pem.write_text("\n".join(lines) + "\n")
    env = {"RUNBOOKS_TEST_SECRET": value, "RUNBOOKS_TEST_PIN": pin}
    proc = run_cli("run", nb("leak_forms"), "-p", f"pem_ref=file:{pem}", "--archive", str(archive_root), env=env)
    assert proc.returncode == 1, proc.stderr  # the last cell raises
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "failed" and m["error"]["kind"] == "RuntimeError"
    # 1. the long message was scrubbed, then cut: no 8 characters of the value survive the cut
    assert "y" * 3946 + "[REDACTED" in m["error"]["message"]  # (the cut may fall inside the marker)
    assert m["error"]["message"].endswith(" ...(truncated)") and len(m["error"]["message"]) <= 4000
    # 2. a numeric secret recorded as a number
    assert m["results"]["account"] == "[REDACTED:env:RUNBOOKS_TEST_PIN]"
    assert str(m["results"]["account_float"]).startswith("[REDACTED:env:RUNBOOKS_TEST_PIN]")
    nbformat.validate(nbformat.reads((run_dir / "notebook.ipynb").read_text(), as_version=4))
    text = json.dumps(notebook(run_dir), ensure_ascii=False)
    assert '"account": "[REDACTED:env:RUNBOOKS_TEST_PIN]"' in text
    # 4. the split value, as the reader sees it
    assert "[REDACTED:env:RUNBOOKS_TEST_SECRET]" in text
    # 5. each line, and the value as used (psycopg's error message)
    assert "dsn error: missing" in text and f"file:{pem}" in text
    needles = [*_windows(value), pin, f"{int(pin):,}", *(w for line in lines for w in _windows(line, 12))]
    _assert_nowhere(archive_root, (proc.stdout, proc.stderr), needles)


@pytest.mark.parametrize("pasted", ["sk_live_" + secrets.token_hex(12), "pw123"], ids=["long", "short"])
def test_a_value_a_runbook_refuses_is_not_echoed_nor_recorded(archive_root: Path, pasted: str) -> None:
    proc = run_cli("run", nb("refuse_param"), "-p", f"hostname={pasted}", "--archive", str(archive_root))
    assert proc.returncode == 2, proc.stderr
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "refused" and m["error"]["kind"] == "BadParameter"
    assert m["error"]["message"].startswith("hostname (value not shown): not in the inventory")
    assert m["parameters"]["hostname"] == "[not recorded]"
    assert "hostname = '[not recorded]'" in json.dumps(notebook(run_dir))
    needles = [pasted] if len(pasted) < 8 else _windows(pasted, 8)
    _assert_nowhere(archive_root, (proc.stdout, proc.stderr), needles)


def test_a_confirm_that_is_no_environment_is_refused_before_the_kernel_and_not_echoed(archive_root: Path) -> None:
    pasted = "sk_live_" + secrets.token_hex(12)
    proc = run_cli(
        "run", nb("refuse_apply"), "--apply", "--confirm", pasted, "--trigger", pasted, "--archive", str(archive_root)
    )
    assert proc.returncode == 2, proc.stderr
    (run_dir,) = run_dirs(archive_root)
    m = manifest(run_dir)
    assert m["status"] == "refused" and m["trigger"] == "[not recorded]"
    assert "--trigger must be one of manual, schedule" in m["error"]["message"]
    second = archive_root / "second"
    proc = run_cli("run", nb("refuse_apply"), "--apply", "--confirm", pasted, "--archive", str(second))
    assert proc.returncode == 2, proc.stderr
    (run_dir,) = run_dirs(second)
    m = manifest(run_dir)
    assert "'confirm' (--confirm) must name the target environment" in m["error"]["message"]
    assert m["parameters"]["confirm"] == "[not recorded]"
    _assert_nowhere(archive_root, (proc.stdout, proc.stderr), _windows(pasted, 8))
