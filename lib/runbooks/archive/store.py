"""Run directories, committed atomically and chained into the ledger.

``Archive.commit`` is the only writer. Under ``ledger.lock`` (an fcntl lock shared by every process) it:

1. completes or rolls back a commit left behind by a crash (``commit.intent``, see below), and removes
   any staging directory (only a lock holder writes one, so a leftover is a crash's);
2. writes ``run.json`` and the files into ``.staging/<run_id>/`` and fsyncs them;
3. writes ``commit.intent`` (the ledger entry to come) and fsyncs it;
4. renames the staging directory to ``YYYY/MM/DD/<run_id>/`` (an atomic rename; never over an existing one);
5. appends the ledger line, rewrites ``ledger.head``, upserts the index row;
6. removes ``commit.intent``.

A crash before 4 leaves no entry (the staging directory is cleaned up, the intent rolled back); a crash
after 4 is rolled forward by the next commit (or ``runbooks runs verify --repair``): the ledger line is
appended if missing (a torn half line is cut first), the head and the index are brought up to date.

An I/O error (a full disk) is not a crash: a run is committed once its ledger line is written. Before
that, the commit is rolled back (staging directory, renamed directory, torn ledger tail and intent
removed) and the error raised: nothing is recorded. After it, the commit succeeds and
:attr:`Archive.incomplete` says what was not done (the head anchor: the intent stays, so the next commit
or ``runs verify --repair`` completes it; the index: removed, rebuilt on next read).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, ConfigDict

from runbooks import paths
from runbooks.archive.canonical import model_canonical_json, sha256_hex
from runbooks.archive.index import RunIndex, rebuild
from runbooks.archive.layout import (
    INDEX_NAME,
    INTENT_NAME,
    LOCK_NAME,
    LOCKS_DIR,
    MANIFEST_NAME,
    STAGING_DIR,
    check_file_name,
    is_safe_run_id,
    run_rel_path,
)
from runbooks.archive.ledger import HEAD_NAME, Ledger, LedgerEntry, fsync_dir, write_atomic
from runbooks.archive.manifest import RunManifest

LOCK_TIMEOUT_SECONDS = 120.0
log = logging.getLogger(__name__)


class ArchiveError(RuntimeError):
    """The archive refused an operation (unsafe name, existing run, unreadable record...)."""


class CommitIntent(BaseModel):
    """What a commit in flight is about to do: enough to roll it forward or back after a crash."""

    model_config = ConfigDict(extra="forbid")

    entry: LedgerEntry
    staging: str  #: relative to the archive root


def _slug(procedure: str) -> str:
    stem = Path(procedure).name.removesuffix(".ipynb")
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return (slug or "run")[:48].rstrip("-")


def _write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(top: Path) -> None:
    for d, _dirs, _files in os.walk(top, topdown=False):
        fsync_dir(Path(d))


class Archive:
    """The audit archive rooted at ``root`` (default: :func:`runbooks.paths.archive_root`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else paths.archive_root()
        self.ledger = Ledger(self.root)
        self.index = RunIndex(self.root / INDEX_NAME)
        #: what the last commit did not do although the run was committed (e.g. the disk filled up)
        self.incomplete: list[str] = []

    # -- layout --------------------------------------------------------------------------------
    @property
    def locks_dir(self) -> Path:
        """``root/locks``: environment lock files of the runner (created on first use)."""
        d = self.root / LOCKS_DIR
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def intent_path(self) -> Path:
        return self.root / INTENT_NAME

    def lock(self) -> FileLock:
        """The writer lock (fcntl on POSIX): serializes commits across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / LOCK_NAME, timeout=LOCK_TIMEOUT_SECONDS)

    @staticmethod
    def new_run_id(procedure: str, now: datetime | None = None) -> str:
        """``20261127T112233Z-check-dns-posture-3f9a1c``: sorts by start time, random suffix for uniqueness."""
        ts = (now or datetime.now(UTC)).astimezone(UTC)
        return f"{ts:%Y%m%dT%H%M%SZ}-{_slug(procedure)}-{secrets.token_hex(3)}"

    def _indexed_path(self, run_id: str) -> str | None:
        try:
            return self.index.path_of(run_id)
        except sqlite3.Error:
            return None

    def run_dir(self, run_id: str) -> Path | None:
        """The directory of a committed run, found through the index (or the ledger if it is missing)."""
        rel = self._indexed_path(run_id)
        if rel is None:
            rel = next((e.path for e in self.ledger.entries() if e.run_id == run_id), None)
        return self.root / rel if rel is not None else None

    def read_manifest(self, run_id: str) -> RunManifest:
        d = self.run_dir(run_id)
        if d is None:
            raise ArchiveError(f"no run {run_id!r} in {self.root}")
        return RunManifest.model_validate_json((d / MANIFEST_NAME).read_bytes())

    # -- writing -------------------------------------------------------------------------------
    def commit(self, manifest: RunManifest, files: dict[str, bytes]) -> Path:
        """Archive one run atomically; returns its directory. See the module docstring for the protocol."""
        run_id = manifest.run_id
        if not is_safe_run_id(run_id):
            raise ArchiveError(f"unsafe run id {run_id!r}")
        names = {name: check_file_name(name) for name in files}
        hashes = {name: sha256_hex(data) for name, data in sorted(files.items())}
        final = manifest.model_copy(update={"files": hashes})
        body = model_canonical_json(final) + b"\n"
        rel = run_rel_path(run_id, manifest.started_at)
        target = self.root / rel

        self.incomplete = []
        with self.lock():
            self._recover_locked()
            if target.exists() or self._indexed_path(run_id) is not None:
                raise ArchiveError(f"run {run_id} is already archived; refusing to overwrite it")
            staging = self.root / STAGING_DIR / run_id
            entry = self.ledger.next_entry(run_id, rel, sha256_hex(body))
            intent = CommitIntent(entry=entry, staging=staging.relative_to(self.root).as_posix())
            try:
                staging.mkdir(parents=True)
                for name, data in files.items():
                    _write_synced(staging / names[name], data)
                _write_synced(staging / MANIFEST_NAME, body)
                _fsync_tree(staging)
                write_atomic(self.intent_path, intent.model_dump_json().encode())
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staging, target)  # atomic; fails rather than replace a non-empty directory
                for d in (target.parent, target.parent.parent, target.parent.parent.parent, self.root):
                    fsync_dir(d)
                self._append_locked(entry)
            except OSError:
                if not self._has_line(entry):  # not committed: leave nothing behind
                    self._roll_back_locked(entry, staging, target)
                    raise
            self.incomplete = self._finish_locked(intent, final)
        return target

    def _has_line(self, entry: LedgerEntry) -> bool:
        with contextlib.suppress(OSError):
            last, partial = self.ledger.tail()
            return last == entry and not partial
        return False

    def _roll_back_locked(self, entry: LedgerEntry, staging: Path, target: Path) -> None:
        """Undo a commit that failed before its ledger line was complete (best effort; a leftover intent
        makes the next commit finish the job: roll back, or forward if the run directory is in place)."""
        with contextlib.suppress(OSError):
            self.ledger.drop_partial_tail(only_prefix_of=entry.line())
        for d in (target, staging):
            shutil.rmtree(d, ignore_errors=True)
        if not target.exists():
            with contextlib.suppress(OSError):
                self.intent_path.unlink(missing_ok=True)
                fsync_dir(self.root)

    def _append_locked(self, entry: LedgerEntry) -> None:
        """The ledger line of ``entry`` unless it is already the last one (a torn half of it is cut first)."""
        self.ledger.drop_partial_tail(only_prefix_of=entry.line())  # our own torn append, nothing else
        last, _ = self.ledger.tail()
        if last is None or last.hash != entry.hash:
            self.ledger.append(entry)

    def _finish_locked(self, intent: CommitIntent, manifest: RunManifest | None) -> list[str]:
        """Ledger line (if not there yet), head, index row, then drop the intent. Idempotent.

        Once the ledger line is written the run is committed: a later I/O error is returned as a note
        (what was not done), not raised."""
        entry = intent.entry
        notes: list[str] = []
        head = self.ledger.read_head()
        if head is None or head.hash != entry.hash:
            self._append_locked(entry)
            try:
                self.ledger.write_head(entry)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    self.ledger.head_path.with_name(f".{HEAD_NAME}.tmp").unlink(missing_ok=True)
                return [
                    f"ledger.head was not updated ({exc.strerror or exc}); the commit intent stays, so the next "
                    "commit or `runbooks runs verify --repair` completes it (until then verify reports "
                    "interrupted_commit); the index was not updated either"
                ]
        try:
            if manifest is not None:
                self.index.upsert(manifest, entry.path, entry.manifest_sha256)
        except (sqlite3.Error, OSError) as exc:  # derived data must never block the record: dropped, rebuilt
            log.warning("archive index unusable (%s); removed, `runbooks runs reindex` rebuilds it", exc)
            with contextlib.suppress(OSError):
                self.index.path.unlink(missing_ok=True)
            notes.append(f"the index was not updated ({exc}); it was removed and is rebuilt on the next read")
        try:
            self.intent_path.unlink(missing_ok=True)
            fsync_dir(self.root)
        except OSError as exc:
            notes.append(f"commit.intent could not be removed ({exc.strerror or exc}); the next commit does it")
        return notes

    def _recover_locked(self) -> str | None:
        """Finish or roll back a commit a crash interrupted; clean staging. Returns what was done."""
        done: str | None = None
        if self.intent_path.exists():
            try:
                intent = CommitIntent.model_validate_json(self.intent_path.read_bytes())
            except ValueError:
                intent = None  # torn intent: written before the rename, so nothing was committed
            target = self.root / intent.entry.path if intent else None
            if intent and target and (target / MANIFEST_NAME).is_file():
                try:
                    manifest: RunManifest | None = RunManifest.model_validate_json(
                        (target / MANIFEST_NAME).read_bytes()
                    )
                except ValueError:
                    manifest = None  # chain it anyway: verify will report the unreadable manifest by run id
                notes = self._finish_locked(intent, manifest)
                done = f"completed the interrupted commit of {intent.entry.run_id}" + "".join(f"; {n}" for n in notes)
            else:
                self.intent_path.unlink()
                done = f"rolled back the interrupted commit of {intent.entry.run_id if intent else 'an unknown run'}"
        for tmp in (self.root / f".{INTENT_NAME}.tmp", self.ledger.head_path.with_name(f".{HEAD_NAME}.tmp")):
            tmp.unlink(missing_ok=True)  # leftovers of an interrupted atomic write (the target is intact)
        staging = self.root / STAGING_DIR
        if staging.is_dir() and any(staging.iterdir()):
            shutil.rmtree(staging)
            staging.mkdir()
        return done

    def recover(self) -> str | None:
        """Complete or roll back a crashed commit (also done at the start of every commit)."""
        with self.lock():
            return self._recover_locked()

    def reindex(self) -> int:
        """Rebuild ``index.sqlite`` from the manifests alone; returns the number of runs indexed."""
        with self.lock():
            return rebuild(self.root, self.index.path)
