"""The runner's end of the private channel to its kernels (:mod:`runbooks.channel` holds the protocol and the
kernel's end): :class:`ChannelServer` (asyncio) receives what the kernel sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets as _stdlib_secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.channel import CHANNEL_ENV, REFUSED, RESULT, SECRET, TOKEN_ENV

_MAX_LINE = 64 * 1024 * 1024


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
        if kind == SECRET and isinstance(msg.get("value"), str):
            self.on_secret(msg["value"], str(msg.get("label", "")))
            return True
        if kind == RESULT and isinstance(msg.get("name"), str):
            self.results[msg["name"]] = msg.get("value")
            return True
        if kind == REFUSED and isinstance(msg.get("name"), str):
            self.refusals.append(msg["name"])
            return True
        return False
