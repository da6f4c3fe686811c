"""The private channel from the kernel to the runner.

The runner listens on a unix socket in a fresh directory only its user can enter (mode 0700) and
passes the socket path and a random token to the kernel in ``RUNBOOKS_RUNNER_CHANNEL`` /
``RUNBOOKS_RUNNER_TOKEN``. Kernel-side code (``runbooks.secret``, ``runbooks.record``) sends one JSON
line per message and waits for the runner's ``ok``: a secret value is known to the runner *before*
``runbooks.secret`` returns it to the notebook, so every value the kernel resolved can be scrubbed
from the notebook before any byte reaches the disk. Nothing travels through notebook outputs, files
or logs. If the channel is configured but unreachable, the kernel side raises (fail closed).

Kernel side: :func:`under_runner`, :func:`send` (stdlib only, cheap to import).
Runner side: :class:`ChannelServer` (asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets as _stdlib_secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHANNEL_ENV = "RUNBOOKS_RUNNER_CHANNEL"
TOKEN_ENV = "RUNBOOKS_RUNNER_TOKEN"
_TIMEOUT = 30.0
_MAX_LINE = 64 * 1024 * 1024


class ChannelError(RuntimeError):
    """The runner's channel is configured but cannot be used."""


# --- kernel side ----------------------------------------------------------------------------------
_client_lock = threading.Lock()
_client: tuple[str, socket.socket, Any] | None = None


def under_runner() -> bool:
    """True when this process is a kernel started by the runner."""
    return bool(os.environ.get(CHANNEL_ENV))


def send(kind: str, **payload: Any) -> None:
    """Send one message to the runner and wait for its acknowledgement."""
    global _client
    path = os.environ.get(CHANNEL_ENV, "")
    if not path:
        raise ChannelError("not running under the runner (no channel)")
    line = json.dumps({"token": os.environ.get(TOKEN_ENV, ""), "kind": kind, **payload}, default=str) + "\n"
    with _client_lock:
        for attempt in (1, 2):
            try:
                if _client is None or _client[0] != path:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(_TIMEOUT)
                    sock.connect(path)
                    _client = (path, sock, sock.makefile("rb"))
                _, sock, reader = _client
                sock.sendall(line.encode())
                reply = reader.readline()
                if reply.strip() != b"ok":
                    raise ChannelError(f"the runner refused the message ({reply.strip().decode(errors='replace')})")
                return
            except OSError as e:
                _client = None
                if attempt == 2:
                    raise ChannelError(f"cannot reach the runner's channel: {type(e).__name__}") from None


# --- runner side ----------------------------------------------------------------------------------
@dataclass
class ChannelServer:
    """Receives ``secret``, ``result`` and ``refused`` messages from the kernel (in the runner's event loop)."""

    on_secret: Any  #: callable(value: str, label: str) -> None
    results: dict[str, Any] = field(default_factory=dict)
    #: class names of the :class:`runbooks.errors.Refused` exceptions the kernel reported, in order
    refusals: list[str] = field(default_factory=list)
    token: str = field(default_factory=lambda: _stdlib_secrets.token_hex(16))
    _dir: Path | None = None
    _server: asyncio.AbstractServer | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def path(self) -> Path:
        assert self._dir is not None
        return self._dir / "channel.sock"

    def env(self) -> dict[str, str]:
        return {CHANNEL_ENV: str(self.path), TOKEN_ENV: self.token}

    async def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="runbooks-"))
        os.chmod(self._dir, 0o700)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.path), limit=_MAX_LINE)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):  # connections the kernel left open
                task.cancel()
            if self._handlers:
                await asyncio.wait(list(self._handlers), timeout=2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while line := await reader.readline():
                writer.write(b"ok\n" if self._accept(line) else b"refused\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    def _accept(self, line: bytes) -> bool:
        try:
            msg = json.loads(line)
        except ValueError:
            return False
        if not isinstance(msg, dict) or msg.get("token") != self.token:
            return False
        kind = msg.get("kind")
        if kind == "secret" and isinstance(msg.get("value"), str):
            self.on_secret(msg["value"], str(msg.get("label", "")))
            return True
        if kind == "result" and isinstance(msg.get("name"), str):
            self.results[msg["name"]] = msg.get("value")
            return True
        if kind == "refused" and isinstance(msg.get("name"), str):
            self.refusals.append(msg["name"])
            return True
        return False
