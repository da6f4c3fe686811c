"""The contract every twin component implements, and the helpers components use to run processes.

The lifecycle (``runbooks.sandbox.lifecycle``) starts components in dependency order, waits until
each is healthy, then lets each provision itself (buckets, seed data, records...). Each component
contributes to the endpoints file (``<root>/endpoints.json``) that the ``sandbox`` inventory reads:
``ctx.overlay`` is deep-merged into the inventory, ``ctx.write_secret(name, value)`` makes a value
available as the secret reference ``sandbox:<name>``.

Plugging in: add ``"module:Class"`` to ``COMPONENTS`` in ``runbooks.sandbox.registry``. A component's
processes are started with ``ctx.spawn(name, argv)`` (own session, output in ``<root>/logs/<name>.log``)
and their pids returned in ``ComponentState.pids``: ``down`` stops those process groups (after the
optional ``stop`` hook). ``faults`` are validated and listed by ``runbooks.sandbox.faults``.

A fault is declared as ``name: FaultSpec(description, caught_by=(Catcher(runbook, checks=...),))``: which
runbook run must catch it, and how (named checks FAIL, or the run is refused with a message). The end-to-end
test ``tests/e2e/test_fault_catalogue.py`` and the fault table of docs/FAULTS.md are generated from these
declarations. The plain form ``name: "description"`` is still accepted, but the catalogue's unit test fails
until its catcher is declared.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Catcher:
    """One runbook run that must catch a fault.

    Either ``checks``: the result rows with these ids (a check's ``check``, a step's ``step``) FAIL on a twin
    with the fault and do not on the clean twin; or ``refusal``: the run is refused (status ``refused``) with an
    error message containing this text. ``params`` are the runbook parameters of the run (strings, as
    ``runbooks run -p``).
    """

    runbook: str
    checks: tuple[str, ...] = ()
    refusal: str = ""
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if bool(self.checks) == bool(self.refusal):
            raise ValueError(f"Catcher({self.runbook!r}): give either checks=(...) or refusal='...', not both/neither")

    @property
    def run_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Identifies the run: catchers with the same runbook and parameters share one run."""
        return self.runbook, tuple(sorted(self.params.items()))


@dataclass(frozen=True)
class FaultSpec:
    """A fault as a component declares it: what it breaks and which runbook run(s) must catch it.

    ``not_caught`` instead of ``caught_by`` says why no runbook catches the fault (it exercises something
    else, e.g. alert delivery) and where that is tested; it must be given explicitly.
    """

    description: str
    caught_by: tuple[Catcher, ...] = ()
    not_caught: str = ""
    #: its catchers' runs are stopped early by other faults (e.g. any failed preflight): a twin of its own
    own_twin: bool = False
    #: faults of a named group share twins only with each other (e.g. faults that break sign-in for every other
    #: runbook but not for their own catcher)
    group: str = ""

    def __post_init__(self) -> None:
        if self.caught_by and self.not_caught:
            raise ValueError("FaultSpec: give caught_by or not_caught, not both")


def platform_fault(description: str, check: str) -> FaultSpec:
    """A fault that ``verify-platform-posture``'s check ``check`` (``id`` or ``id@subject``) catches. The platform
    faults share twins only with each other (group ``platform``): ``signing-key-legacy`` breaks sign-in for every
    other runbook."""
    return FaultSpec(description, (Catcher("verify-platform-posture", checks=(check,)),), group="platform")


#: how a component declares a fault: the full record, or (older form, no catcher) just its description
FaultDeclaration = FaultSpec | str


@dataclass
class ComponentState:
    """What ``status`` reports for a component and what ``down`` needs to stop it."""

    name: str
    address: str  #: the main address, e.g. "http://127.0.0.1:41234" or "127.0.0.1:5353"
    pids: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  #: other addresses, paths...


@dataclass
class SandboxContext:
    root: Path
    faults: frozenset[str] = frozenset()
    scale: int = 1
    host: str = "127.0.0.1"
    #: states of components already started (dependencies come first)
    components: dict[str, ComponentState] = field(default_factory=dict)
    #: deep-merged into the sandbox inventory (endpoints, ids, recipient...)
    overlay: dict[str, Any] = field(default_factory=dict)
    #: guards ``overlay`` and ``components``: independent components start and provision concurrently
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def secrets_dir(self) -> Path:
        d = self.root / "secrets"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    @property
    def logs_dir(self) -> Path:
        d = self.root / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def dir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def write_secret(self, name: str, value: str) -> str:
        """Store a twin credential; returns its reference ``sandbox:<name>``."""
        p = self.secrets_dir / name
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return f"sandbox:{name}"

    def read_secret(self, name: str) -> str:
        return (self.secrets_dir / name).read_text()

    def merge_overlay(self, data: dict[str, Any]) -> None:
        """Deep-merge ``data`` into the inventory overlay (lists and scalars are replaced)."""

        def merge(a: dict[str, Any], b: dict[str, Any]) -> None:
            for k, v in b.items():
                if isinstance(v, dict) and isinstance(a.get(k), dict):
                    merge(a[k], v)
                else:
                    a[k] = v

        with self.lock:
            merge(self.overlay, data)

    def log_path(self, name: str) -> Path:
        """Where ``spawn(name, ...)`` sends the process's output."""
        return self.logs_dir / f"{name}.log"

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
        group: str | None = None,
    ) -> int:
        """Start a detached process (own session, so ``down`` can stop its whole group); log to logs/.

        The process group id equals the returned pid: ``down`` signals the whole group, so children
        of the process are stopped too. ``user``/``group`` drop privileges (root only).
        """
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - handed to the child
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=[] if (user is not None and os.geteuid() == 0) else None,
        )
        log.close()
        return proc.pid

    def spawn_python(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> int:
        return self.spawn(name, [sys.executable, "-m", module, *args], env=env)

    def spawn_emulator(self, name: str, module: str, faults: Iterable[str]) -> tuple[int, str]:
        """Start a vendor emulator (the arguments of ``emulators/common.py``) on a free loopback port, passing it
        the active faults among ``faults``; returns (pid, base URL)."""
        port = free_port(self.host)
        active = ",".join(sorted(self.faults & set(faults)))
        args = ("--root", str(self.root), "--host", self.host, "--port", str(port), "--faults", active)
        return self.spawn_python(name, module, *args), f"http://{self.host}:{port}"

    def fault(self, name: str) -> bool:
        return name in self.faults


class Component(ABC):
    """One part of the twin. Subclasses live in ``runbooks.sandbox.components``."""

    name: ClassVar[str]
    depends_on: ClassVar[tuple[str, ...]] = ()
    #: fault name -> its declaration (description, catcher); shown by ``runbooks sandbox faults``
    faults: ClassVar[Mapping[str, FaultDeclaration]] = {}

    @abstractmethod
    def start(self, ctx: SandboxContext) -> ComponentState:
        """Start the component's processes (detached) and return at once."""

    @abstractmethod
    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        """(healthy, detail). Cheap: called in a polling loop by ``up`` and by ``status``."""

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:  # noqa: B027 - optional hook
        """After the component is healthy: create resources, seed data, apply faults."""

    def stop(self, ctx: SandboxContext, state: ComponentState) -> None:  # noqa: B027 - optional hook
        """Optional graceful shutdown, called by ``down`` before it signals the process groups in
        ``state.pids`` (SIGTERM, then SIGKILL after a grace period). Must not raise for a dead process."""


def dump_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
