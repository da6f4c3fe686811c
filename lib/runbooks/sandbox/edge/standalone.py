"""Run the edge on its own (tests, the benchmark): start, provision, publish the overlay, stop.

The lifecycle runs the edge among the other components; this helper runs only the edge, under a
given root, and writes ``<root>/endpoints.json`` so that ``runbooks.inventory.loader.load("sandbox",
sandbox=root)`` sees its endpoints and ``sandbox:`` references resolve with ``RUNBOOKS_SANDBOX=root``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbooks.sandbox.component import ComponentState, SandboxContext, dump_json


@dataclass
class RunningEdge:
    ctx: SandboxContext
    state: ComponentState

    @property
    def root(self) -> Path:
        return self.ctx.root

    @property
    def token(self) -> str:
        return self.ctx.read_secret("cloudflare_api_token")

    @property
    def overlay(self) -> dict[str, Any]:
        return self.ctx.overlay

    def environment(self, name: str = "sandbox") -> Any:
        from runbooks.inventory.loader import load

        return load(name, sandbox=self.root)


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            waited = pid if not _alive(pid) else 0
        if waited == pid:
            return
        time.sleep(0.05)
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_edge(
    root: Path, faults: Iterable[str] = (), *, generated: int = 0, latency_ms: float = 0.0, health_timeout: float = 30.0
) -> Iterator[RunningEdge]:
    from runbooks.sandbox.components.edge import EdgeComponent

    root.mkdir(parents=True, exist_ok=True)
    ctx = SandboxContext(root=root.resolve(), faults=frozenset(faults))
    comp = EdgeComponent(generated=generated, latency_ms=latency_ms)
    state = comp.start(ctx)
    try:
        deadline = time.monotonic() + health_timeout
        while True:
            ok, detail = comp.health(ctx, state)
            if ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"edge not healthy: {detail}")
            time.sleep(0.1)
        comp.provision(ctx, state)
        dump_json(ctx.root / "endpoints.json", {"inventory_overlay": ctx.overlay})
        yield RunningEdge(ctx, state)
    finally:
        for pid in state.pids:
            stop_pid(pid)
