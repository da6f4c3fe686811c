"""Slot claims: a slot of a schedule is run (or recorded as missed) at most once, even when two hosts call
``runbooks schedule run-due`` at the same instant.

:class:`SlotClaims` is the interface: one conditional-create primitive, :meth:`SlotClaims.create_if_absent`,
plus reads. :class:`LocalSlotClaims` implements it in the archive root: ``<archive>/schedule/claims/<env>/
<procedure>/<slot>.json``, created with a hard link of a fully written temporary file (atomic, and it fails when
the name exists: the content is never seen half-written). An S3-backed archive implements the same
primitive with a conditional PUT (``If-None-Match: *``); nothing else changes.

Keys are ``<env>/<procedure>/<slot id>`` for the claim and ``<env>/<procedure>/<slot id>.result`` for the
outcome the claimant writes after the run (run id and status), each created once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbooks.schedule.cron import parse_slot_id, slot_id

if TYPE_CHECKING:
    from runbooks.archive.objects import Objects
    from runbooks.archive.stores import ArchiveStore

CLAIMS_DIR = Path("schedule") / "claims"
RESULT_SUFFIX = ".result"


@dataclass(frozen=True)
class SlotKey:
    environment: str
    procedure: str
    slot: datetime

    @property
    def key(self) -> str:
        return f"{self.environment}/{self.procedure}/{slot_id(self.slot)}"


class SlotClaims(ABC):
    """Where slots are claimed. Implementations only need the four primitives below."""

    @abstractmethod
    def create_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless the key exists; True when this call created it."""

    @abstractmethod
    def read(self, key: str) -> bytes | None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Keys directly under ``prefix`` (``<env>/<procedure>``), sorted."""

    # -- built on the primitives ---------------------------------------------------------------------------
    def claim(self, slot: SlotKey, action: str, **extra: Any) -> bool:
        """Claim ``slot`` for ``action`` ("run" or "missed"); False when another caller has it already."""
        record = {
            "environment": slot.environment,
            "procedure": slot.procedure,
            "slot": slot.slot.astimezone(UTC).isoformat(),
            "action": action,
            "claimed_at": datetime.now(UTC).isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            **extra,
        }
        return self.create_if_absent(slot.key, _dump(record))

    def record_result(self, slot: SlotKey, **result: Any) -> bool:
        return self.create_if_absent(slot.key + RESULT_SUFFIX, _dump(result))

    def get(self, slot: SlotKey) -> dict[str, Any] | None:
        return _load(self.read(slot.key))

    def result(self, slot: SlotKey) -> dict[str, Any] | None:
        return _load(self.read(slot.key + RESULT_SUFFIX))

    def claimed_slots(self, environment: str, procedure: str) -> list[datetime]:
        """The claimed slots of a schedule, oldest first."""
        out = []
        for key in self.list_keys(f"{environment}/{procedure}"):
            name = key.rsplit("/", 1)[-1]
            if not name.endswith(RESULT_SUFFIX):
                with contextlib.suppress(ValueError):
                    out.append(parse_slot_id(name))
        return sorted(out)


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, indent=1, default=str).encode() + b"\n"


def _load(data: bytes | None) -> dict[str, Any] | None:
    return None if data is None else json.loads(data)


class LocalSlotClaims(SlotClaims):
    """Claims as files under ``<archive root>/schedule/claims`` (a shared filesystem for several hosts)."""

    def __init__(self, archive_root: Path) -> None:
        self.root = Path(archive_root) / CLAIMS_DIR

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"bad claim key {key!r}")
        return self.root.joinpath(*parts[:-1], parts[-1] + ".json")

    def create_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".claim-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic; fails if the name exists
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(tmp)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        d = self.root.joinpath(*prefix.split("/"))
        if not d.is_dir():
            return []
        return sorted(f"{prefix}/{p.name[:-5]}" for p in d.glob("*.json"))


class ObjectSlotClaims(SlotClaims):
    """Claims as objects of an archive's store (``schedule/claims/<key>.json``): for the audit bucket, a
    conditional PUT (``If-None-Match: *``), so hosts that share only the bucket still run a slot once."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    @staticmethod
    def _key(key: str) -> str:
        return f"{CLAIMS_DIR.as_posix()}/{key}.json"

    def create_if_absent(self, key: str, data: bytes) -> bool:
        return self.objects.create_if_absent(self._key(key), data) is not None

    def read(self, key: str) -> bytes | None:
        stored = self.objects.get(self._key(key))
        return None if stored is None else stored.data

    def list_keys(self, prefix: str) -> list[str]:
        base = f"{CLAIMS_DIR.as_posix()}/{prefix}/"
        out = []
        for k in self.objects.list_keys(base):
            name = k[len(base) :]
            if "/" not in name and name.endswith(".json"):
                out.append(f"{prefix}/{name[:-5]}")
        return sorted(out)


def claims_for(archive: Path | str | ArchiveStore) -> SlotClaims:
    """The slot claims of an archive: files under a local root (atomic hard links), objects of any other store."""
    from runbooks.archive.stores import LocalStore

    if isinstance(archive, (str, Path)):
        return LocalSlotClaims(Path(archive))
    if isinstance(archive, LocalStore):
        return LocalSlotClaims(archive.root)
    return ObjectSlotClaims(archive.objects)
