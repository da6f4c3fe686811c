"""What the emulators share: command-line arguments, a JSON-persisted state, serving with uvicorn."""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EmulatorArgs:
    root: Path  #: the sandbox root (secrets/ lives there)
    state_dir: Path  #: this emulator's own directory under the root
    host: str
    port: int
    faults: frozenset[str]


def parse_args(name: str, argv: list[str] | None = None) -> EmulatorArgs:
    p = argparse.ArgumentParser(prog=f"runbooks.sandbox.emulators.{name}")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--faults", default="", help="comma-separated fault names")
    a = p.parse_args(argv)
    state_dir = a.root / name
    state_dir.mkdir(parents=True, exist_ok=True)
    return EmulatorArgs(
        a.root.resolve(), state_dir.resolve(), a.host, a.port, frozenset(f for f in a.faults.split(",") if f)
    )


class JsonState:
    """A dict persisted to one JSON file, guarded by a lock; mutations go through ``update()``."""

    def __init__(self, path: Path, initial: dict[str, Any] | None = None):
        self.path = path
        self._lock = threading.RLock()
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else dict(initial or {})

    @contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            yield self.data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True, default=str))
            tmp.replace(self.path)

    def section(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self.data.setdefault(name, {})


def write_secret(root: Path, name: str, value: str) -> str:
    d = root / "secrets"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return f"sandbox:{name}"


def serve(app: Any, args: EmulatorArgs) -> None:
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
