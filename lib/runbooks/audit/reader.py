"""The audit site's one view of the archive: ledger entries, manifests, notebooks and the verify verdict.

Everything the site shows comes through :class:`ArchiveReader`, and only from archived files (the
redacted notebook and ``run.json``), so the site can never show more than the archive holds. (The verify
verdict is computed by :mod:`runbooks.audit.verifier`, which reads the archive but shows nothing of it.) Today it
reads a local archive root through :class:`runbooks.archive.store.Archive`; a store-backed reader
(local or ``s3://``) replaces this class without touching the site.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbooks.archive.layout import MANIFEST_NAME
from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.manifest import RunManifest
from runbooks.archive.store import Archive

NOTEBOOK_NAME = "notebook.ipynb"
_ENTRY_FIELDS = set(LedgerEntry.model_fields)


class ArchiveUnreadable(RuntimeError):
    """The archive location holds no archive (nothing to build a site from)."""


@dataclass(frozen=True)
class ArchivedRun:
    """One run the ledger knows, with its manifest (None when run.json is missing or unreadable)."""

    entry: LedgerEntry
    manifest: RunManifest | None


class ArchiveReader:
    """Read-only access to one archive (``location``: a local directory)."""

    def __init__(self, location: Path | str | None = None) -> None:
        self._archive = Archive(location)
        self.location = str(self._archive.root)

    def check(self) -> None:
        """Raise :class:`ArchiveUnreadable` when the location is not an archive."""
        if not self._archive.root.is_dir():
            raise ArchiveUnreadable(f"{self.location} is not a directory")
        if not self._archive.ledger.path.is_file():
            raise ArchiveUnreadable(f"{self.location} has no ledger.jsonl: not an archive of runs")

    def entries(self) -> list[LedgerEntry]:
        """Ledger entries in ledger order. Lines that are not entries are skipped (:meth:`verify` reports
        them); this is the fast path (plain JSON, no validation) since the site reads every entry."""
        return [LedgerEntry.model_construct(**fields) for fields in self.entry_fields()]

    def entry_fields(self) -> list[dict[str, Any]]:
        """:meth:`entries` as plain dicts of the entry's fields (cheaper: a rebuild builds few entries)."""
        try:
            data = self._archive.ledger.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = [ln for ln in data.splitlines() if ln.strip()]
        try:  # one parse for the whole ledger; line by line only when some line is not JSON
            parsed: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            parsed = []
            for raw in lines:
                try:
                    parsed.append(json.loads(raw))
                except ValueError:
                    continue
        return [
            fields
            for fields in parsed
            if isinstance(fields, dict)
            and fields.keys() == _ENTRY_FIELDS
            and all(isinstance(fields[k], int if k == "seq" else str) for k in _ENTRY_FIELDS)
        ]

    def head_hash(self) -> str | None:
        head = self._archive.ledger.read_head()
        return head.hash if head else None

    def read_manifest_bytes(self, entry: LedgerEntry) -> bytes | None:
        try:
            return (self._archive.root / entry.path / MANIFEST_NAME).read_bytes()
        except OSError:
            return None

    def read_manifest(self, entry: LedgerEntry) -> RunManifest | None:
        data = self.read_manifest_bytes(entry)
        if data is None:
            return None
        try:
            return RunManifest.model_validate_json(data)
        except ValueError:
            return None

    def runs(self) -> Iterator[ArchivedRun]:
        """Every run in ledger order, manifest parsed."""
        for entry in self.entries():
            yield ArchivedRun(entry, self.read_manifest(entry))

    def read_notebook(self, entry: LedgerEntry) -> bytes | None:
        """The archived (redacted) notebook of a run, or None if the run has none."""
        try:
            return (self._archive.root / entry.path / NOTEBOOK_NAME).read_bytes()
        except OSError:
            return None
