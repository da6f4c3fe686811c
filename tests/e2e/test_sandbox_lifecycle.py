"""The twin's lifecycle end to end: up, status --json, idempotent up, down leaves no process behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbooks.sandbox import lifecycle, processes
from runbooks.sandbox.registry import component_classes

pytestmark = pytest.mark.sandbox


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", "sandbox", *args], capture_output=True, text=True, timeout=120
    )


def _refs(root: Path) -> list[processes.ProcessRef]:
    data = json.loads((root / "state.json").read_text())
    return [processes.ProcessRef.from_json(p) for c in data["components"].values() for p in c["procs"]]


def test_up_status_down_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "twin"
    t0 = time.monotonic()
    up = _cli("up", "--root", str(root))
    elapsed = time.monotonic() - t0
    try:
        assert up.returncode == 0, up.stderr
        expected = set(component_classes())
        for name in expected:
            assert name in up.stdout  # each component's address is printed
        # a hang, not a speed target: 15 s on a quiet 2-core machine, more under a loaded test run
        assert elapsed < 60, f"sandbox up took {elapsed:.1f}s"

        st = _cli("status", "--root", str(root), "--json")
        assert st.returncode == 0, st.stderr
        report = json.loads(st.stdout)
        assert report["status"] == "up"
        assert set(report["components"]) == expected
        for name, c in report["components"].items():
            assert c["healthy"], (name, c["detail"])
            assert c["address"]
            assert c["alive_pids"], name

        endpoints = json.loads((root / "endpoints.json").read_text())
        assert endpoints["inventory_overlay"]["endpoints"]["s3"] == report["components"]["s3"]["address"]
        refs = _refs(root)
        assert refs and all(processes.alive(r) for r in refs)
    finally:
        down = _cli("down", "--root", str(root))
    assert down.returncode == 0, down.stderr
    left = [r.pid for r in refs if processes.alive(r)]
    assert left == [], f"processes of the twin still running after down: {left}"
    assert processes.group_members([r.pid for r in refs]) == []
    assert not (root / "endpoints.json").exists()
    pg = root / "postgres"
    assert not (pg.is_symlink() and pg.resolve().exists())  # data kept outside the root is discarded
    assert (root / "logs" / "postgres.log").is_file()  # logs stay for troubleshooting
    after = _cli("status", "--root", str(root), "--json")
    assert json.loads(after.stdout)["status"] == "down"
    assert after.returncode == 3


def test_up_is_idempotent_and_refuses_a_different_fault_set(tmp_path: Path) -> None:
    root = tmp_path / "twin"
    first = lifecycle.up(root, components=["s3"])
    try:
        pids = {n: s.pids for n, s in first.items()}
        t0 = time.monotonic()
        second = lifecycle.up(root, components=["s3"])
        assert time.monotonic() - t0 < 5
        assert {n: s.pids for n, s in second.items()} == pids  # nothing restarted
        with pytest.raises(lifecycle.SandboxError, match="faults"):
            lifecycle.up(root, components=["s3"], faults=["backup-no-object-lock"])
        cli = _cli("up", "--root", str(root), "--component", "s3", "--fault", "runtime-reads-backups")
        assert cli.returncode == 1
        assert "down" in cli.stderr
    finally:
        lifecycle.down(root)


def test_up_after_a_crash_restarts_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "twin"
    lifecycle.up(root, components=["s3"])
    try:
        refs = _refs(root)
        processes.stop_groups(refs, grace=2)  # the twin "crashes" behind the lifecycle's back
        assert lifecycle.status(root)["status"] == "degraded"
        states = lifecycle.up(root, components=["s3"])
        assert lifecycle.status(root)["status"] == "up"
        assert states["s3"].pids != [r.pid for r in refs]
    finally:
        lifecycle.down(root)


def test_reset_wipes_the_root_and_refuses_foreign_directories(tmp_path: Path) -> None:
    root = tmp_path / "twin"
    lifecycle.up(root, components=["postgres"])
    refs = _refs(root)
    lifecycle.reset(root)
    assert not any(processes.alive(r) for r in refs)
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(lifecycle.SandboxError, match="not created by"):
        lifecycle.up(foreign, components=["s3"])
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_a_component_that_never_becomes_healthy_is_named_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbooks.sandbox.components.s3 import S3Component

    monkeypatch.setattr(S3Component, "health", lambda self, ctx, state: (False, "never ready"))
    root = tmp_path / "twin"
    with pytest.raises(lifecycle.SandboxError) as err:
        lifecycle.up(root, components=["s3"], timeout=2)
    msg = str(err.value)
    assert "'s3'" in msg and "never ready" in msg and str(root / "logs" / "s3.log") in msg
    assert not any(processes.alive(r) for r in _refs(root))  # what was started is stopped again
