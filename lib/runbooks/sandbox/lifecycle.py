"""Bring the twin up, report on it, bring it down: ``runbooks sandbox up|down|status|reset``.

``up`` starts every registered component (``runbooks.sandbox.registry``) in dependency order, each as
soon as its dependencies are healthy and provisioned, so independent components start concurrently.
It waits until each is healthy (bounded), lets it provision itself, then writes:

- ``<root>/state.json``: scale, faults, and per component its address, extra details and the processes
  (pid + start time) that ``down`` stops;
- ``<root>/endpoints.json``: ``{"inventory_overlay": ..., "components": ...}``; the ``sandbox`` inventory
  deep-merges ``inventory_overlay`` (``runbooks.inventory.loader.sandbox_overlay``).

Component processes log to ``<root>/logs/<component>.log``; an error names the component and its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from runbooks.paths import sandbox_root
from runbooks.sandbox import faults as fault_catalogue
from runbooks.sandbox import processes
from runbooks.sandbox.component import Component, ComponentState, SandboxContext, dump_json
from runbooks.sandbox.registry import RegistryError, component_classes, dependency_order, skipped_components
from runbooks.state.twin import TWIN_ID_KEY, new_twin_id

STATE_FILE = "state.json"
ENDPOINTS_FILE = "endpoints.json"
MARKER_FILE = ".runbooks-sandbox"
TIMEOUT_ENV = "RUNBOOKS_SANDBOX_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
STOP_GRACE = 5.0

Reporter = Callable[[str, str], None]


class SandboxError(RuntimeError):
    """The twin could not be brought up, or is in a state the command cannot handle."""


# -- state --------------------------------------------------------------------------------------


def resolve_root(root: Path | str | None) -> Path:
    return Path(root).resolve() if root is not None else sandbox_root()


def _lock(root: Path, name: str = "state") -> FileLock:
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / f".{name}.lock"))


def read_state(root: Path | str | None = None) -> dict[str, Any] | None:
    path = resolve_root(root) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _write_state(root: Path, data: dict[str, Any]) -> None:
    with _lock(root):
        dump_json(root / STATE_FILE, data)


def _component_json(state: ComponentState, refs: list[processes.ProcessRef]) -> dict[str, Any]:
    return {
        "name": state.name,
        "address": state.address,
        "pids": list(state.pids),
        "extra": state.extra,
        "procs": [r.to_json() for r in refs],
    }


def _component_state(data: dict[str, Any]) -> ComponentState:
    return ComponentState(
        name=data["name"], address=data["address"], pids=list(data.get("pids", [])), extra=dict(data.get("extra", {}))
    )


def _refs(data: dict[str, Any]) -> list[processes.ProcessRef]:
    return [processes.ProcessRef.from_json(p) for p in data.get("procs", [])]


def update_component(root: Path | str | None, state: ComponentState) -> None:
    """Record a component's new state (e.g. postgres restarted by a point-in-time recovery).

    Processes whose pid is new are identified now, so ``down`` stops them.
    """
    root = resolve_root(root)
    with _lock(root):
        data = read_state(root)
        if data is None:
            raise SandboxError(f"{root}: no twin state to update (is the sandbox up?)")
        old = data["components"].get(state.name, {})
        known = {r.pid: r for r in _refs(old)} if old else {}
        refs = [known.get(pid) or processes.identify(pid) for pid in state.pids]
        data["components"][state.name] = _component_json(state, refs)
        dump_json(root / STATE_FILE, data)


def context_from_state(root: Path | str | None = None) -> tuple[SandboxContext, dict[str, ComponentState]]:
    """A context and the component states of a running (or last run) twin, for status/down/tools."""
    root = resolve_root(root)
    data = read_state(root)
    if data is None:
        raise SandboxError(f"{root}: the sandbox has no state (never brought up here)")
    states = {n: _component_state(c) for n, c in data.get("components", {}).items()}
    overlay: dict[str, Any] = {}
    ep = root / ENDPOINTS_FILE
    if ep.is_file():
        overlay = json.loads(ep.read_text()).get("inventory_overlay", {})
    ctx = SandboxContext(
        root=root,
        faults=frozenset(data.get("faults", [])),
        scale=int(data.get("scale", 1)),
        components=dict(states),
        overlay=overlay,
    )
    return ctx, states


# -- helpers ------------------------------------------------------------------------------------


def _log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in text[-lines:])


def _error(root: Path, name: str, what: str) -> str:
    log = root / "logs" / f"{name}.log"
    tail = _log_tail(log)
    msg = f"sandbox component {name!r} {what}.\n  log: {log} (all logs: {root / 'logs'})"
    return msg + (f"\n  last lines of the log:\n{tail}" if tail else "")


#: how often a component is started when its process exits because the free port it was given was taken by
#: another process in between (``free_port`` only finds a port free; parallel twins can race for it)
PORT_RACE_ATTEMPTS = 3
_PORT_TAKEN = ("address already in use", "is in use by another program")


def _log_size(root: Path, name: str) -> int:
    try:
        return (root / "logs" / f"{name}.log").stat().st_size
    except OSError:
        return 0


def _lost_port_race(root: Path, name: str, since: int) -> bool:
    """Did the component's process exit because its port was in use (its log says so after offset ``since``,
    where this start's output begins: the log is appended to)?"""
    try:
        with (root / "logs" / f"{name}.log").open("rb") as f:
            f.seek(since)
            text = f.read(64 * 1024).decode(errors="replace").lower()
    except OSError:
        return False
    return any(marker in text for marker in _PORT_TAKEN)


def _prepare_root(root: Path) -> None:
    """Start from an empty root. Only a directory the twin created (or an empty one) is ever wiped."""
    if root.exists() and any(not _is_lock(c) for c in root.iterdir()):
        if not (root / MARKER_FILE).is_file():
            raise SandboxError(
                f"{root} is not empty and was not created by `runbooks sandbox up`; choose another --root"
            )
        _wipe(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER_FILE).write_text("state of the local twin; wiped by `runbooks sandbox up` and `reset`\n")


def _is_lock(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".lock")


EXTERNAL_PREFIX = "runbooks-twin-"


def discard_external(root: Path | str | None = None) -> None:
    """Remove the directories a component keeps outside the root (linked into it as ``runbooks-twin-*``).

    Components whose files must be reachable by an unprivileged user may live outside the root; the
    link stays so that the root still shows where they were. ``down`` calls it once every process stopped.
    """
    root = resolve_root(root)
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.is_symlink():
            target = Path(os.readlink(child))
            if target.is_absolute() and target.name.startswith(EXTERNAL_PREFIX):
                shutil.rmtree(target, ignore_errors=True)


def _wipe(root: Path) -> None:
    discard_external(root)
    for child in root.iterdir():
        if _is_lock(child):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _timeout(value: float | None) -> float:
    if value is not None:
        return value
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)


def _same_config(data: dict[str, Any], scale: int, faults: frozenset[str], names: list[str]) -> str | None:
    """None if the running twin matches the request; otherwise what differs."""
    running_faults = frozenset(data.get("faults", []))
    if running_faults != faults:
        return f"it runs with faults {sorted(running_faults) or 'none'}, you asked for {sorted(faults) or 'none'}"
    if int(data.get("scale", 1)) != scale:
        return f"it runs at scale {data.get('scale')}, you asked for scale {scale}"
    missing = sorted(set(names) - set(data.get("components", {})))
    if missing:
        return f"it runs without {', '.join(missing)}"
    return None


# -- up -----------------------------------------------------------------------------------------


class _Bringup:
    """One thread per component: wait for dependencies, start, wait healthy, provision."""

    def __init__(
        self,
        ctx: SandboxContext,
        classes: dict[str, type[Component]],
        order: list[str],
        data: dict[str, Any],
        timeout: float,
        report: Reporter,
    ):
        self.ctx, self.classes, self.order, self.data = ctx, classes, order, data
        self.timeout, self.report = timeout, report
        self.ready = {n: threading.Event() for n in order}
        self.abort = threading.Event()
        self.errors: dict[str, str] = {}
        self.instances = {n: classes[n]() for n in order}

    def _save(self) -> None:
        _write_state(self.ctx.root, self.data)

    def _register(self, state: ComponentState, refs: list[processes.ProcessRef] | None = None) -> None:
        with self.ctx.lock:
            self.ctx.components[state.name] = state
            old = {r.pid: r for r in _refs(self.data["components"].get(state.name, {}))}
            if refs is None:
                refs = [old.get(pid) or processes.identify(pid) for pid in state.pids]
            self.data["components"][state.name] = _component_json(state, refs)
            self._save()

    def _wait_healthy(self, name: str, comp: Component, state: ComponentState, t0: float, since: int) -> str:
        """``healthy``, ``aborted``, ``port taken`` (its process exited because its port was in use), or
        ``failed`` (the error is recorded in :attr:`errors` and the bring-up aborted)."""
        refs = _refs(self.data["components"][name])
        deadline = t0 + self.timeout
        detail = "no health report yet"
        while True:
            if self.abort.is_set():
                return "aborted"
            try:
                ok, detail = comp.health(self.ctx, state)
            except Exception as e:
                ok, detail = False, f"{type(e).__name__}: {e}"
            if ok:
                return "healthy"
            if refs and not any(processes.alive(r) for r in refs):
                if _lost_port_race(self.ctx.root, name, since):
                    return "port taken"
                self.errors[name] = _error(self.ctx.root, name, f"exited before it became healthy ({detail})")
                self.abort.set()
                return "failed"
            if time.monotonic() > deadline:
                self.errors[name] = _error(self.ctx.root, name, f"was not healthy after {self.timeout:.0f}s ({detail})")
                self.abort.set()
                return "failed"
            time.sleep(0.1)

    def run_one(self, name: str) -> None:
        try:
            self._run_one(name)
        except Exception as e:  # reported by the main thread, which tears everything down
            self.errors[name] = _error(self.ctx.root, name, f"failed: {type(e).__name__}: {e}")
            self.abort.set()

    def _run_one(self, name: str) -> None:
        comp = self.instances[name]
        for dep in comp.depends_on:
            while not self.ready[dep].wait(0.05):
                if self.abort.is_set():
                    return
        if self.abort.is_set():
            return
        t0 = time.monotonic()
        for attempt in range(1, PORT_RACE_ATTEMPTS + 1):
            since = _log_size(self.ctx.root, name)
            state = comp.start(self.ctx)
            self._register(state)
            verdict = self._wait_healthy(name, comp, state, t0, since)
            if verdict == "healthy":
                break
            if verdict == "port taken":
                if attempt < PORT_RACE_ATTEMPTS:
                    # the free port it was given was taken by another process before it bound it: start it again
                    self.report(name, "its port was taken meanwhile; starting it again on another port")
                    continue
                what = f"found its port taken by another process {PORT_RACE_ATTEMPTS} times"
                self.errors[name] = _error(self.ctx.root, name, what)
                self.abort.set()
            return  # aborted, or the error is recorded
        self.report(name, f"healthy after {time.monotonic() - t0:.1f}s")
        comp.provision(self.ctx, state)
        self._register(state)
        self.report(name, f"ready at {state.address} ({time.monotonic() - t0:.1f}s)")
        self.ready[name].set()

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.run_one, args=(n,), name=f"sandbox-{n}", daemon=True) for n in self.order
        ]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.1)
        except BaseException:
            self.abort.set()
            for t in threads:
                t.join(10)
            raise


def up(
    root: Path | str | None = None,
    scale: int = 1,
    faults: Iterable[str] = (),
    components: Iterable[str] | None = None,
    timeout: float | None = None,
    report: Reporter | None = None,
) -> dict[str, ComponentState]:
    """Bring the twin up (or confirm it is already up with the same configuration).

    ``components`` restricts the twin to those components and their dependencies (default: all
    registered). Raises :class:`SandboxError` naming the failing component and its log; whatever was
    started is stopped again before the error is raised (also on Ctrl-C).
    """
    root = resolve_root(root)
    report = report or (lambda _name, _msg: None)
    if scale < 1:
        raise SandboxError("--scale must be at least 1")
    fault_set = fault_catalogue.validate(faults)
    classes = component_classes()
    if components is None:
        for name, missing in skipped_components().items():
            report(name, f"skipped: it needs {missing!r}, which is not registered")
    order = dependency_order(classes, list(components) if components is not None else list(classes))
    if not order:
        raise SandboxError("no sandbox component is registered")

    root.mkdir(parents=True, exist_ok=True)
    with _lock(root, "up"):
        existing = read_state(root)
        if existing and existing.get("status") in ("up", "starting"):
            report_ = status(root)
            if report_["status"] == "up":
                differs = _same_config(existing, scale, fault_set, order)
                if differs:
                    raise SandboxError(
                        f"the sandbox at {root} is already up but {differs}; "
                        "run `runbooks sandbox down` (or `reset`) first"
                    )
                report("sandbox", "already up")
                return {n: _component_state(c) for n, c in existing["components"].items()}
            report("sandbox", f"found a {report_['status']} twin: stopping its leftovers first")
            down(root)
        return _fresh_up(root, scale, fault_set, order, classes, _timeout(timeout), report)


def _fresh_up(
    root: Path,
    scale: int,
    fault_set: frozenset[str],
    order: list[str],
    classes: dict[str, type[Component]],
    timeout: float,
    report: Reporter,
) -> dict[str, ComponentState]:
    _prepare_root(root)
    started = time.time()
    data: dict[str, Any] = {
        "version": 1,
        "status": "starting",
        "scale": scale,
        "faults": sorted(fault_set),
        "order": order,
        "started_at": started,
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        TWIN_ID_KEY: new_twin_id(),  # a fresh twin: state kept about another twin is not its own
        "components": {},
    }
    _write_state(root, data)
    ctx = SandboxContext(root=root, faults=fault_set, scale=scale)
    bring = _Bringup(ctx, classes, order, data, timeout, report)
    try:
        bring.run()
        if bring.errors:
            raise SandboxError("\n".join(bring.errors[n] for n in order if n in bring.errors))
        endpoints = {
            "inventory_overlay": ctx.overlay,
            "components": {n: {"address": s.address, **s.extra} for n, s in ctx.components.items()},
        }
        dump_json(root / ENDPOINTS_FILE, endpoints)
        _check_inventory(root)
    except BaseException:
        with contextlib.suppress(Exception):
            down(root)
        raise
    data["status"] = "up"
    data["up_seconds"] = round(time.time() - started, 2)
    _write_state(root, data)
    return {n: ctx.components[n] for n in order}


def _check_inventory(root: Path) -> None:
    """The overlay must make a valid sandbox inventory: fail `up`, not the first runbook."""
    from runbooks.inventory.loader import InventoryError, load

    try:
        load("sandbox", sandbox=root)
    except InventoryError as e:
        raise SandboxError(f"the twin's inventory overlay ({root / ENDPOINTS_FILE}) is invalid:\n{e}") from None


# -- status / down / reset ----------------------------------------------------------------------


def status(root: Path | str | None = None, *, check_health: bool = True) -> dict[str, Any]:
    """What runs: overall status (up, degraded, down, not running) and per component address and health."""
    root = resolve_root(root)
    data = read_state(root)
    if data is None:
        return {"root": str(root), "status": "not running", "components": {}}
    out: dict[str, Any] = {
        "root": str(root),
        "status": data.get("status"),
        "scale": data.get("scale"),
        "faults": data.get("faults", []),
        "started": data.get("started"),
        "up_seconds": data.get("up_seconds"),
        "components": {},
    }
    if data.get("status") == "down":
        return out
    ctx, states = context_from_state(root)
    try:
        classes: dict[str, type[Component]] = component_classes()
    except RegistryError:
        classes = {}
    all_ok = True
    for name, cdata in data.get("components", {}).items():
        st = states[name]
        alive = [r.pid for r in _refs(cdata) if processes.alive(r)]
        entry: dict[str, Any] = {"address": st.address, "pids": st.pids, "alive_pids": alive, **st.extra}
        healthy, detail = False, "not checked"
        if cdata.get("procs") and not alive:
            detail = "no process running"
        elif check_health and name in classes:
            try:
                healthy, detail = classes[name]().health(ctx, st)
            except Exception as e:
                healthy, detail = False, f"{type(e).__name__}: {e}"
        elif check_health:
            detail = "component not registered"
        entry.update(healthy=healthy, detail=detail)
        all_ok = all_ok and healthy
        out["components"][name] = entry
    if data.get("status") == "up" and not all_ok:
        out["status"] = "degraded"
    return out


def down(root: Path | str | None = None, grace: float = STOP_GRACE) -> list[str]:
    """Stop every process the twin started (graceful hook, then SIGTERM/SIGKILL of each process group),
    then discard the data kept outside the root (logs and state stay for troubleshooting).

    Returns the names of the components stopped. Raises SandboxError if a process survives.
    """
    root = resolve_root(root)
    data = read_state(root)
    if data is None or data.get("status") == "down":
        return []
    ctx, states = context_from_state(root)
    try:
        classes: dict[str, type[Component]] = component_classes()
    except RegistryError:
        classes = {}
    names = list(data.get("components", {}))
    for name in reversed(names):
        if name in classes and any(processes.alive(r) for r in _refs(data["components"][name])):
            with contextlib.suppress(Exception):
                classes[name]().stop(ctx, states[name])
    refs = [r for name in names for r in _refs(data["components"][name])]
    left = processes.stop_groups(refs, grace=grace, not_before=float(data.get("started_at", 0)))
    (root / ENDPOINTS_FILE).unlink(missing_ok=True)
    if not left:
        discard_external(root)  # `up` always starts from scratch; logs and state stay under the root
    data["status"] = "down"
    data["stopped"] = datetime.now(UTC).isoformat()
    _write_state(root, data)
    if left:
        raise SandboxError(f"processes of the twin survived SIGKILL: {left}")
    return names


def reset(root: Path | str | None = None) -> None:
    """``down``, then wipe the root (only a root the twin created)."""
    root = resolve_root(root)
    if not root.exists():
        return
    down(root)
    if (root / MARKER_FILE).is_file():
        _wipe(root)
    elif any(not _is_lock(c) for c in root.iterdir()):
        raise SandboxError(f"{root} was not created by `runbooks sandbox up`: not wiping it")
