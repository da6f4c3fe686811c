"""The private channel between the runner and the kernels it starts: the protocol both ends share and the
kernel's end.

The runner (:mod:`runbooks.runner.channel`, the host end) listens on a unix socket in a fresh directory only
its user can enter (mode 0700) and passes the socket path and a random token to the kernel in
``RUNBOOKS_RUNNER_CHANNEL`` / ``RUNBOOKS_RUNNER_TOKEN``. Kernel-side code (``runbooks.secret``,
``runbooks.record``, the refusal report of :mod:`runbooks.errors`) sends one JSON line per message and waits for
the runner's ``ok``: a secret value is known to the runner *before* ``runbooks.secret`` returns it to the
notebook, so every value the kernel resolved can be scrubbed from the notebook before any byte reaches the
disk. Nothing travels through notebook outputs, files or logs. If the channel is configured but unreachable,
the kernel side raises (fail closed).

Messages (``kind``): :data:`SECRET` (``value``, ``label``), :data:`RESULT` (``name``, ``value``),
:data:`REFUSED` (``name``, ``mro``). The runner also tells the kernel its run id (:data:`RUN_ID_ENV`) and the
environment whose lock it holds (:data:`LOCKED_ENV`).

Stdlib only, cheap to import: it sits below everything that may run in a kernel.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

CHANNEL_ENV = "RUNBOOKS_RUNNER_CHANNEL"
TOKEN_ENV = "RUNBOOKS_RUNNER_TOKEN"
#: the run a runner-started kernel belongs to
RUN_ID_ENV = "RUNBOOKS_RUN_ID"
#: the environment whose lock the runner took before it started the kernel
LOCKED_ENV = "RUNBOOKS_LOCKED_ENVIRONMENT"
#: message kinds
SECRET = "secret"
RESULT = "result"
REFUSED = "refused"
_TIMEOUT = 30.0


class ChannelError(RuntimeError):
    """The runner's channel is configured but cannot be used."""


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
