"""Runs the twin service processes: start with an env, restart on deploy, stop on shutdown.

Like Render, the twin keeps each service's output as timestamped log lines: every line the process prints
is written to ``<root>/logs/service-<name>.log`` as ``<ISO 8601 UTC timestamp> <instance> <line>``, which the
logs API (``GET /v1/logs``) serves. A background worker (``heartbeat``) listens on no port: it reports its
health in its log (docs/SERVICE_CONTRACT.md).

The processes stay in the emulator's process group, so stopping the sandbox (which signals the group)
stops them too; the emulator also terminates them when it exits.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

SERVICE_MODULE = "runbooks.sandbox.services"
#: variables of the emulator's own environment a service process inherits (nothing else leaks in)
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")


class Supervisor:
    def __init__(self, logs_dir: Path, host: str = "127.0.0.1"):
        self.logs_dir = logs_dir
        self.host = host
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        atexit.register(self.stop_all)
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                previous = signal.getsignal(sig)
                signal.signal(sig, self._on_signal(previous))
            except ValueError:  # not the main thread (tests): rely on atexit
                pass

    def _on_signal(self, previous: Any) -> Any:
        def handler(signum: int, frame: Any) -> None:
            self.stop_all()
            if callable(previous):
                previous(signum, frame)
            else:
                raise SystemExit(128 + signum)

        return handler

    def start(
        self,
        name: str,
        port: int,
        env: dict[str, str],
        *,
        key_names: list[str],
        heartbeat: tuple[float, str] | None = None,
    ) -> int:
        """(Re)start service ``name`` on ``port`` with exactly ``env`` (plus what the process needs to run).

        ``heartbeat`` (seconds, marker): the service is a background worker that listens on no port and
        writes its health to its log every that many seconds."""
        self.stop(name)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        full = {k: os.environ[k] for k in INHERITED if k in os.environ}
        full.update(env)
        full.update({"HOST": self.host, "TWIN_SERVICE_NAME": name, "TWIN_KEY_NAMES": ",".join(key_names)})
        if heartbeat is None:
            full["PORT"] = str(port)
        else:
            full.update({"TWIN_HEARTBEAT_SECONDS": str(heartbeat[0]), "TWIN_HEARTBEAT_MARKER": heartbeat[1]})
        proc = subprocess.Popen(
            [sys.executable, "-m", SERVICE_MODULE],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        threading.Thread(
            target=self._pump, args=(proc, self.log_path(name)), daemon=True, name=f"log-{name}-{proc.pid}"
        ).start()
        with self._lock:
            self._procs[name] = proc
        return proc.pid

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"service-{name}.log"

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], path: Path) -> None:
        """Copy the process's output into its log, one timestamped line per line (as Render's log stream)."""
        assert proc.stdout is not None
        with open(path, "ab") as log:
            for raw in proc.stdout:
                stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
                log.write(f"{stamp} {proc.pid} ".encode() + raw.rstrip(b"\n") + b"\n")
                log.flush()

    def stop(self, name: str, timeout: float = 5.0) -> None:
        with self._lock:
            proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def stop_all(self) -> None:
        for name in list(self._procs):
            self.stop(name)

    def pid(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def wait_started(self, name: str, timeout: float = 15.0) -> bool:
        """A worker's deploy goes live once its process runs: True when it printed its first line and is alive."""
        deadline = time.monotonic() + timeout
        proc = self._procs.get(name)
        while proc is not None and time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            path = self.log_path(name)
            if path.is_file() and f" {proc.pid} ".encode() in path.read_bytes()[-65536:]:
                return True
            time.sleep(0.1)
        return False

    def wait_health(self, port: int, timeout: float = 15.0) -> tuple[int, dict[str, Any]]:
        """Poll the service's health endpoint until it answers; (status code, body) or (0, {}) on timeout."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{port}/healthz"
        while time.monotonic() < deadline:
            try:
                r = httpx.get(url, timeout=3.0)
                return r.status_code, r.json()
            except (httpx.HTTPError, ValueError):
                time.sleep(0.1)
        return 0, {}
