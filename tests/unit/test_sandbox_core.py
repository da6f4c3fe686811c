"""Unit tests of the sandbox core: registry and start order, fault catalogue, process control, context."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli.demo import plan
from runbooks.sandbox import faults, processes, registry
from runbooks.sandbox.component import Component, ComponentState, SandboxContext
from runbooks.sandbox.components.s3 import lock_actions, policies, sandbox_inventory_static


def _comp(name: str, deps: tuple[str, ...] = ()) -> type[Component]:
    class C(Component):
        def start(self, ctx: SandboxContext) -> ComponentState:
            raise NotImplementedError

        def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
            return True, ""

    C.name = name  # type: ignore[misc]
    C.depends_on = deps  # type: ignore[misc]
    return C


def test_dependency_order_puts_dependencies_first_and_pulls_them_in() -> None:
    classes = {
        "render": _comp("render", ("supabase",)),
        "postgres": _comp("postgres"),
        "supabase": _comp("supabase", ("postgres",)),
        "s3": _comp("s3"),
    }
    assert registry.dependency_order(classes, ["render"]) == ["postgres", "supabase", "render"]
    full = registry.dependency_order(classes, list(classes))
    assert full.index("postgres") < full.index("supabase") < full.index("render")
    assert sorted(full) == sorted(classes)


def test_dependency_errors_are_named() -> None:
    with pytest.raises(registry.RegistryError, match="cycle: a -> b -> a"):
        registry.dependency_order({"a": _comp("a", ("b",)), "b": _comp("b", ("a",))}, ["a"])
    with pytest.raises(registry.RegistryError, match="unknown component 'ghost' \\(needed by a\\)"):
        registry.dependency_order({"a": _comp("a", ("ghost",))}, ["a"])


def test_missing_module_is_skipped_but_a_broken_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry._load("runbooks.sandbox.components.does_not_exist:X") is None
    (tmp_path / "broken_twin_component.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "odd_twin_component.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(registry.RegistryError, match="cannot import"):
        registry._load("broken_twin_component:C")
    with pytest.raises(registry.RegistryError, match="no attribute"):
        registry._load("odd_twin_component:C")
    with pytest.raises(registry.RegistryError, match=r"not a runbooks\.sandbox\.component\.Component"):
        registry._load("odd_twin_component:X")


def test_registered_components_include_postgres_and_s3() -> None:
    classes = registry.component_classes()
    assert {"postgres", "s3"} <= set(classes)
    names = list(classes)
    for name, cls in classes.items():
        for dep in cls.depends_on:
            assert names.index(dep) < names.index(name)


def test_fault_catalogue_validates_and_documents() -> None:
    cat = faults.catalogue()
    for name in (
        "backup-versioning-off",
        "backup-no-object-lock",
        "runtime-reads-backups",
        "writer-can-delete-backups",
        "backup-bucket-is-app-bucket",
    ):
        assert cat[name].component == "s3" and cat[name].description
        assert name in faults.help_text()
    assert faults.validate(["runtime-reads-backups", " runtime-reads-backups "]) == {"runtime-reads-backups"}
    with pytest.raises(faults.UnknownFault, match="nope"):
        faults.validate(["nope"])


def test_writer_policy_denies_destruction_unless_faulted() -> None:
    env = sandbox_inventory_static()
    healthy = policies(env, frozenset())["backup-writer"]["Statement"]
    denied = {a for s in healthy if s["Effect"] == "Deny" for a in s["Action"]}
    assert {
        "s3:DeleteObjectVersion",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutObjectRetention",
    } <= denied
    faulty = policies(env, frozenset({"writer-can-delete-backups"}))["backup-writer"]["Statement"]
    allowed = {a for s in faulty if s["Effect"] == "Allow" for a in s["Action"]}
    assert "s3:DeleteObjectVersion" in allowed
    assert "s3:DeleteObjectVersion" not in {a for s in faulty if s["Effect"] == "Deny" for a in s["Action"]}
    runtime = policies(env, frozenset())["runtime"]["Statement"]
    assert not any("spectral-backups" in r for s in runtime for r in s["Resource"])


def _spawn_tree(ctx: SandboxContext) -> int:
    # a shell that forks a child: stopping the group must stop both
    return ctx.spawn("tree", ["/bin/sh", "-c", "sleep 60 & sleep 60; wait"])


def test_stop_groups_stops_a_process_and_its_children(tmp_path: Path) -> None:
    ctx = SandboxContext(root=tmp_path)
    pid = _spawn_tree(ctx)
    ref = processes.identify(pid)
    deadline = time.monotonic() + 5
    while len(processes.group_members([pid])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes.group_members([pid])) >= 2
    assert processes.stop_groups([ref], grace=2) == []
    assert not processes.alive(ref)
    assert processes.group_members([pid]) == []


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        stale = processes.ProcessRef(proc.pid, processes.identify(proc.pid).create_time - 1000)  # type: ignore[operator]
        assert not processes.alive(stale)
        processes.stop_groups([stale], grace=0.5, not_before=time.time())
        assert proc.poll() is None  # untouched
    finally:
        proc.kill()
        proc.wait()


def test_context_secrets_overlay_and_logs(tmp_path: Path) -> None:
    ctx = SandboxContext(root=tmp_path)
    assert ctx.write_secret("database_url", "postgresql://x") == "sandbox:database_url"
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / "database_url").st_mode)
    assert mode == 0o600 and ctx.read_secret("database_url") == "postgresql://x"
    ctx.merge_overlay({"endpoints": {"s3": "http://a"}})
    ctx.merge_overlay({"endpoints": {"s3_region": "us-east-1"}, "backup": {"recipient": "age1x"}})
    assert ctx.overlay == {"endpoints": {"s3": "http://a", "s3_region": "us-east-1"}, "backup": {"recipient": "age1x"}}
    pid = ctx.spawn("echo", ["/bin/sh", "-c", "echo hello-from-child"])
    assert processes.wait_exit(processes.identify(pid), 5)
    assert "hello-from-child" in ctx.log_path("echo").read_text()


def test_demo_plan_runs_defaults_then_demo_apply(tmp_path: Path) -> None:
    def nb(name: str, **meta: object) -> Path:
        p = tmp_path / f"{name}.ipynb"
        p.write_text(json.dumps({"cells": [], "metadata": {"runbook": meta}, "nbformat": 4, "nbformat_minor": 5}))
        return p

    notebooks = [
        nb("b-flip", destructive=True, demo_apply=True),
        nb("a-check", destructive=False),
        nb("c-wipe", destructive=True),
    ]
    planned = [(p.procedure, p.mode, p.params) for p in plan(notebooks)]
    assert planned == [
        ("a-check", "run", {}),
        ("b-flip", "dry-run", {}),
        ("c-wipe", "dry-run", {}),
        ("b-flip", "apply", {"apply": "true", "confirm": "sandbox"}),
    ]
    assert [p.procedure for p in plan(notebooks, only=["c-wipe"])] == ["c-wipe"]


@pytest.mark.parametrize(
    ("method", "query", "headers", "expected"),
    [
        ("PUT", {"retention": [""]}, {}, ["PutObjectRetention"]),
        (
            "PUT",
            {"retention": [""]},
            {"x-amz-bypass-governance-retention": "true"},
            ["PutObjectRetention", "BypassGovernanceRetention"],
        ),
        ("PUT", {"legal-hold": [""]}, {}, ["PutObjectLegalHold"]),
        (
            "PUT",
            {},
            {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "2030-01-01T00:00:00Z"},
            ["PutObjectRetention"],
        ),
        ("PUT", {}, {"x-amz-object-lock-legal-hold": "ON"}, ["PutObjectLegalHold"]),
        ("POST", {"uploads": [""]}, {"x-amz-object-lock-mode": "COMPLIANCE"}, ["PutObjectRetention"]),
        ("PUT", {"uploadId": ["u"], "partNumber": ["1"]}, {}, []),
        ("PUT", {}, {}, []),
        ("POST", {"uploadId": ["u"]}, {}, []),
    ],
)
def test_object_lock_requests_need_their_own_iam_action(
    method: str, query: dict[str, list[str]], headers: dict[str, str], expected: list[str]
) -> None:
    assert lock_actions(method, query, headers) == expected


# -- a component whose free port is taken before it binds it is started again ---------------------------
class _Racer(Component):
    """Its process exits with the port-in-use message ``lose`` times, then it starts and stays up."""

    name = "racer"
    lose = 1
    message = "Address already in use"

    def __init__(self) -> None:
        self.starts = 0

    def start(self, ctx: SandboxContext) -> ComponentState:
        self.starts += 1
        if self.starts <= self.lose:
            argv = [sys.executable, "-c", f"print({self.message!r}, flush=True); raise SystemExit(1)"]
        else:
            argv = [sys.executable, "-c", "import time; time.sleep(60)"]
        return ComponentState(self.name, f"127.0.0.1:{self.starts}", [ctx.spawn(self.name, argv)])

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        return self.starts > self.lose, "not yet"


def _bring_up(tmp_path: Path, racer: type[_Racer]) -> tuple[Any, _Racer]:
    from runbooks.sandbox.lifecycle import _Bringup

    ctx = SandboxContext(root=tmp_path)
    bring = _Bringup(ctx, {"racer": racer}, ["racer"], {"components": {}}, 20.0, lambda *_: None)
    bring.run()
    instance = bring.instances["racer"]
    assert isinstance(instance, _Racer)
    for state in ctx.components.values():
        for pid in state.pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 9)
    return bring, instance


def test_a_component_that_lost_its_port_is_started_again(tmp_path: Path) -> None:
    bring, racer = _bring_up(tmp_path, _Racer)
    assert bring.errors == {} and racer.starts == 2
    assert bring.ready["racer"].is_set()


def test_a_component_that_keeps_losing_its_port_fails_naming_it(tmp_path: Path) -> None:
    class Loser(_Racer):
        lose = 99

    bring, racer = _bring_up(tmp_path, Loser)
    assert racer.starts == 3 and "port taken by another process 3 times" in bring.errors["racer"]


def test_a_component_that_exits_for_another_reason_is_not_started_again(tmp_path: Path) -> None:
    class Crasher(_Racer):
        message = "config error: no such file"

    bring, racer = _bring_up(tmp_path, Crasher)
    assert racer.starts == 1 and "exited before it became healthy" in bring.errors["racer"]
