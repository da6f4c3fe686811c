"""A standalone keys twin for the key/config tests: the Supabase twin (served in-process)
and the render component (Render API twin + four twin services, real processes) on a temp root.

Other test modules import :func:`keys_twin` from here; the smoke test below checks the harness itself.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from runbooks.inventory.loader import load
from runbooks.inventory.models import Environment
from runbooks.sandbox.component import ComponentState, SandboxContext, free_port
from runbooks.sandbox.components.render import RenderComponent
from runbooks.sandbox.emulators.common import EmulatorArgs
from runbooks.sandbox.emulators.supabase.app import PROJECT_FILE, create_app

PROJECT_REF = "twinprojectrefabcdef"


def supabase_keys_app(root: Path, port: int) -> FastAPI:
    """The Supabase twin for project ``PROJECT_REF`` (the key tests use its keys and auth routes)."""
    state_dir = root / "supabase"
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / PROJECT_FILE).write_text(json.dumps({"ref": PROJECT_REF}))
    return create_app(EmulatorArgs(root, state_dir, "127.0.0.1", port, frozenset()))


@dataclass
class KeysTwin:
    root: Path
    ctx: SandboxContext
    supabase_url: str
    render: ComponentState

    @property
    def render_api(self) -> str:
        return str(self.render.extra["api"])

    def secret(self, name: str) -> str:
        return (self.root / "secrets" / name).read_text()

    @property
    def owner_id(self) -> str:
        return str(self.ctx.overlay["render_owner_id"])

    def inventory(self) -> Environment:
        """The sandbox inventory with this twin's overlay (``sandbox:`` refs need RUNBOOKS_SANDBOX=root)."""
        (self.root / "endpoints.json").write_text(json.dumps({"inventory_overlay": self.ctx.overlay}))
        return load("sandbox", sandbox=self.root)


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s")


@contextmanager
def supabase_twin(root: Path) -> Iterator[str]:
    """The Supabase twin served in a thread; yields the project URL (= Management API URL)."""
    (root / "secrets").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "secrets" / "supabase_access_token").write_text("sbp_" + secrets.token_hex(20))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(supabase_keys_app(root, port), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started, 15, "supabase keys twin")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def keys_twin(root: Path, faults: frozenset[str] = frozenset()) -> Iterator[KeysTwin]:
    ctx = SandboxContext(root=root, faults=faults)
    with supabase_twin(root) as url:
        ctx.components["supabase"] = ComponentState("supabase", url, [])
        ctx.merge_overlay(
            {"endpoints": {"supabase_api": url, "supabase_project": url}, "supabase_project_ref": PROJECT_REF}
        )
        comp = RenderComponent()
        state = comp.start(ctx)
        try:
            _wait(lambda: comp.health(ctx, state)[0], 90, "render twin")
            comp.provision(ctx, state)
            yield KeysTwin(root, ctx, url, state)
        finally:
            for pid in state.pids:
                with suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
            for pid in state.pids:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    with suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)  # the emulator is our child: reap it
                    try:
                        os.killpg(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)


def test_harness_brings_up_four_healthy_services(tmp_path: Path) -> None:
    from runbooks.providers.render import RenderProvider

    with keys_twin(tmp_path) as twin:
        services = twin.render.extra["services"]
        assert sorted(services) == ["api", "app", "ops", "worker"]
        # the worker has no URL, as on Render: its health comes from its log, through the logs API
        assert services["worker"] is None
        render = RenderProvider(twin.render_api, twin.secret("render_api_key"), twin.owner_id)
        for svc in render.services():
            if svc.type != "cron_job":
                code, body = render.health(svc)
                assert code == 200 and body["healthy"] is True and body["generation"], (svc.name, body)
        services = {n: u for n, u in services.items() if u}
    # the render group is gone: no twin service answers any more
    for url in services.values():
        try:
            httpx.get(url, timeout=1)
        except httpx.HTTPError:
            continue
        raise AssertionError(f"{url} still answers after the twin stopped")
