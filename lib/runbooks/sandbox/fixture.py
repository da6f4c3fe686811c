"""The twin as a context manager, for pytest fixtures (``tests/conftest.py``) and scripts.

``running_sandbox(root, faults=...)`` brings a twin up under ``root`` and always brings it down again.
The :class:`Sandbox` handle gives tests what they need without knowing the layout: secrets, the
inventory of the twin, ready-made S3 clients per credential and the database DSN.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.inventory.models import Environment
from runbooks.paths import SANDBOX_ENV
from runbooks.sandbox import lifecycle
from runbooks.sandbox.component import ComponentState

#: credential name -> secret-name prefix of its S3 access key
S3_CREDENTIALS = {
    "runtime": "runtime",
    "backup-writer": "backup",
    "drill-reader": "drill",
    "audit-writer": "audit",
    "admin": "admin",
}


@dataclass
class Sandbox:
    root: Path
    components: dict[str, ComponentState]
    faults: frozenset[str] = frozenset()
    scale: int = 1
    _inventory: Environment | None = field(default=None, repr=False)

    def secret(self, name: str) -> str:
        """A twin credential by its sandbox secret name (tests only; runbooks use runbooks.secret)."""
        return (self.root / "secrets" / name).read_text().strip()

    @property
    def database_url(self) -> str:
        return self.secret("database_url")

    def inventory(self) -> Environment:
        """The ``sandbox`` inventory as runbooks see it (with this twin's overlay)."""
        if self._inventory is None:
            from runbooks.inventory.loader import load

            self._inventory = load("sandbox", sandbox=self.root)
        return self._inventory

    def address(self, component: str) -> str:
        return self.components[component].address

    def s3_client(self, credential: str = "admin") -> Any:
        """A boto3 S3 client signed with one of the twin's credentials (runtime, backup-writer, drill-reader,
        audit-writer, admin)."""
        import boto3
        from botocore.config import Config

        prefix = S3_CREDENTIALS[credential]
        state = self.components["s3"]
        return boto3.client(
            "s3",
            endpoint_url=state.address,
            region_name=state.extra.get("region", "us-east-1"),
            aws_access_key_id=self.secret(f"{prefix}_aws_access_key_id"),
            aws_secret_access_key=self.secret(f"{prefix}_aws_secret_access_key"),
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def status(self) -> dict[str, Any]:
        return lifecycle.status(self.root)


@contextmanager
def running_sandbox(
    root: Path,
    *,
    faults: Iterable[str] = (),
    scale: int = 1,
    components: Iterable[str] | None = None,
    timeout: float | None = None,
    set_env: bool = False,
) -> Iterator[Sandbox]:
    """Bring a twin up under ``root``; bring it down on exit, whatever happens.

    ``set_env`` points ``RUNBOOKS_SANDBOX`` at ``root`` for the duration (so ``runbooks.load_inventory
    ("sandbox")`` and ``sandbox:`` secret references resolve to this twin), restoring the previous value.
    Logs and state stay under ``root`` after ``down``.
    """
    previous = os.environ.get(SANDBOX_ENV)
    if set_env:
        os.environ[SANDBOX_ENV] = str(root)
    try:
        fault_set = frozenset(faults)
        states = lifecycle.up(
            root,
            scale=scale,
            faults=fault_set,
            components=list(components) if components is not None else None,
            timeout=timeout,
        )
        try:
            yield Sandbox(root=Path(root).resolve(), components=states, faults=fault_set, scale=scale)
        finally:
            lifecycle.down(root)  # logs and state stay under root for post-mortems
    finally:
        if set_env:
            if previous is None:
                os.environ.pop(SANDBOX_ENV, None)
            else:
                os.environ[SANDBOX_ENV] = previous
