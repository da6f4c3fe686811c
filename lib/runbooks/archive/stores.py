"""Archive stores behind one interface, chosen by the archive URL's scheme (as papermill's ``iorw``).

``open_store(url, environment)`` returns an :class:`ArchiveStore` for:

- a directory path (no scheme, or ``file://``): :class:`LocalStore`, today's layout (``runs/`` by default);
- ``s3://bucket/prefix``: :class:`runbooks.archive.s3store.S3Store`, the archive of record in the
  object-locked audit bucket;
- ``audit:ENV``: the audit bucket of environment ``ENV``'s inventory (``s3://<audit bucket>/archive``).

A new store is one class and one :func:`register` line (``"scheme": "module:factory"``, imported when first
used, so a local run never imports boto3). The runner, ``runbooks runs list|show|verify|sync``, the demo and
``guard_apply`` only talk to this interface.

Besides runs, a store holds small objects written with conditional primitives (:mod:`runbooks.archive.objects`):
environment locks, resumable state, and anything that needs "exactly one writer wins" across machines
(:meth:`ArchiveStore.create_if_absent`, :meth:`ArchiveStore.replace_if_match`).
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runbooks import paths
from runbooks.archive.index import RunIndex
from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.manifest import RunManifest
from runbooks.archive.objects import LocalObjects, Objects, Stored
from runbooks.archive.store import Archive, ArchiveError
from runbooks.archive.verify import VerifyReport


@dataclass(frozen=True)
class Committed:
    """Where a run went: the archive of record, or the local spool when the store could not be reached."""

    location: str  #: the run's directory, or its URL in the bucket
    run_dir: Path | None  #: a local directory holding the run (the local archive, or the spool)
    spooled: bool = False
    note: str = ""  #: why it was spooled
    #: what the archive did not do although the run is recorded (e.g. a full disk: the index, the head)
    notes: list[str] = field(default_factory=list)


class HeldLock(Protocol):
    """An environment lock held by this process (file lock or lease)."""

    acquired_at: Any
    took_over_from: dict[str, Any] | None

    def release(self) -> None: ...


class ArchiveStore(ABC):
    """One archive (local directory or bucket prefix): runs, their ledger, locks and small objects."""

    url: str
    objects: Objects

    new_run_id = staticmethod(Archive.new_run_id)

    # -- small objects with conditional writes (locks, state, schedule slots) ----------------------
    def get(self, key: str) -> Stored | None:
        return self.objects.get(key)

    def create_if_absent(self, key: str, data: bytes) -> str | None:
        """Write ``key`` only if it does not exist; its etag, or None if it existed (someone else won)."""
        return self.objects.create_if_absent(key, data)

    def replace_if_match(self, key: str, data: bytes, etag: str) -> str | None:
        """Replace ``key`` only if it is still at ``etag``; the new etag, or None if it changed meanwhile."""
        return self.objects.replace_if_match(key, data, etag)

    # -- runs -----------------------------------------------------------------------------------------
    @abstractmethod
    def check_writable(self) -> None:
        """Raise (PermissionError, ArchiveError) before any kernel starts if runs cannot be recorded."""

    @abstractmethod
    def commit(self, manifest: RunManifest, files: dict[str, bytes]) -> Committed: ...

    @abstractmethod
    def acquire_lock(self, environment: str, *, run_id: str, actor: str) -> HeldLock:
        """Take ``environment``'s lock or raise :class:`runbooks.archive.lock.LockHeld` naming the holder."""

    @abstractmethod
    def read_lock(self, environment: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def index(self) -> RunIndex:
        """The query index of ``runs list`` (brought up to date first)."""

    @abstractmethod
    def entries(self) -> list[LedgerEntry]: ...

    @abstractmethod
    def read_manifest(self, run_id: str) -> RunManifest: ...

    @abstractmethod
    def read_file(self, run_id: str, name: str) -> bytes: ...

    @abstractmethod
    def location_of(self, run_id: str) -> str | None: ...

    @abstractmethod
    def verify(self, run_id: str | None = None, deep: bool = False) -> VerifyReport:
        """Check the chain and the runs (``deep``: re-read everything, trusting no earlier verification)."""

    def recover(self) -> str | None:
        """Complete or roll back an interrupted commit (stores that commit atomically have nothing to do)."""
        return None

    def sync(self) -> list[str]:
        """Ship runs spooled while the store was away; returns their run ids (nothing to do locally)."""
        return []

    def reindex(self) -> int:
        return self.index().count()

    def kernel_archive(self) -> str:
        """What the kernel gets as ``RUNBOOKS_ARCHIVE`` (so ``guard_apply`` and state use the same store)."""
        return self.url


class LocalStore(ArchiveStore):
    """The archive in a local directory (:class:`runbooks.archive.store.Archive`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.archive = Archive(root)
        self.url = str(self.archive.root)
        self.objects = LocalObjects(self.archive.root)

    @property
    def root(self) -> Path:
        return self.archive.root

    def check_writable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"the archive {self.root} is not writable")

    def commit(self, manifest: RunManifest, files: dict[str, bytes]) -> Committed:
        run_dir = self.archive.commit(manifest, files)
        return Committed(str(run_dir), run_dir, notes=list(self.archive.incomplete))

    def acquire_lock(self, environment: str, *, run_id: str, actor: str) -> HeldLock:
        from runbooks.archive import lock

        return lock.acquire(self.archive.locks_dir, environment, run_id=run_id, actor=actor)

    def read_lock(self, environment: str) -> dict[str, Any] | None:
        from runbooks.archive import lock

        return lock.read_holder(self.archive.locks_dir, environment)

    def index(self) -> RunIndex:
        a = self.archive
        if not a.index.exists() and (a.ledger.path.exists() or any(a.root.glob("[0-9]" * 4))):
            a.reindex()  # derived data: rebuild it rather than answer from nothing
        return a.index

    def entries(self) -> list[LedgerEntry]:
        return self.archive.ledger.entries()

    def read_manifest(self, run_id: str) -> RunManifest:
        return self.archive.read_manifest(run_id)

    def read_file(self, run_id: str, name: str) -> bytes:
        d = self.archive.run_dir(run_id)
        if d is None:
            raise ArchiveError(f"no run {run_id!r} in {self.root}")
        return (d / name).read_bytes()

    def location_of(self, run_id: str) -> str | None:
        d = self.archive.run_dir(run_id)
        return str(d) if d is not None else None

    def verify(self, run_id: str | None = None, deep: bool = False) -> VerifyReport:
        from runbooks.archive.verify import verify

        return verify(self.archive, run_id)  # always reads every file

    def recover(self) -> str | None:
        return self.archive.recover()

    def reindex(self) -> int:
        return self.archive.reindex()


StoreFactory = Callable[[str, str | None], ArchiveStore]

#: scheme -> "module:callable(url, environment) -> ArchiveStore", imported on first use
_REGISTRY: dict[str, str | StoreFactory] = {
    "file": "runbooks.archive.stores:_local",
    "s3": "runbooks.archive.s3store:from_url",
    "audit": "runbooks.archive.s3store:from_audit_url",
}


def register(scheme: str, factory: str | StoreFactory) -> None:
    """Add (or replace) the store of a URL scheme: a callable or a ``"module:callable"`` string."""
    _REGISTRY[scheme] = factory


def scheme_of(url: str) -> str:
    if "://" in url:
        return url.split("://", 1)[0].lower()
    head, sep, _rest = url.partition(":")
    if sep and head.isalpha() and len(head) > 1 and head.lower() in _REGISTRY:
        return head.lower()
    return "file"


def _local(url: str, environment: str | None) -> ArchiveStore:
    return LocalStore(url.removeprefix("file://"))


def _factory(scheme: str) -> StoreFactory:
    entry = _REGISTRY.get(scheme)
    if entry is None:
        known = ", ".join(f"{s}:" for s in sorted(_REGISTRY))
        raise ArchiveError(f"no archive store for the scheme {scheme!r}; use a directory or one of {known}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[scheme] = entry
    return entry


def open_store(url: str | Path | None = None, environment: str | None = None) -> ArchiveStore:
    """The archive at ``url`` (default: ``$RUNBOOKS_ARCHIVE``, else ``runs/`` of the project).

    ``environment`` picks the inventory that supplies an S3 archive's endpoint and credential (and the
    environment of ``audit:``); without it, the inventory whose audit bucket is the URL's bucket is used.
    """
    if isinstance(url, Path):
        return LocalStore(url)
    raw = url or paths.archive_url()
    return _factory(scheme_of(raw))(raw, environment)
