"""Verification of the archive: every file hash, every manifest hash, the ledger chain and its head.

The ledger's length, its head, a pending commit intent and the list of run directories are read
together under the writer lock (a consistent snapshot while runs keep being committed); the ledger
(append-only) is then streamed up to that length, and the run directories, immutable once committed,
are hashed after the lock is released.

A hostile ledger (garbage, a line of gigabytes, a ``seq`` of 10**30, millions of lines) is reported, not
fatal: lines are streamed with a bounded length, nothing is sized by a ``seq`` value, work is linear in
the ledger's size, and at most :data:`MAX_FINDINGS_PER_KIND` findings of a kind are listed (then one
summary finding with the count). A file that cannot be read (e.g. an I/O error) is a finding too.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runbooks.archive.canonical import sha256_file
from runbooks.archive.index import COLUMNS, row_values
from runbooks.archive.layout import MANIFEST_NAME, iter_run_dirs, list_run_files
from runbooks.archive.ledger import GENESIS, LedgerEntry, LedgerHead, LedgerLine
from runbooks.archive.manifest import RunManifest
from runbooks.archive.store import Archive, CommitIntent


class FindingKind(StrEnum):
    FILE_EDITED = "file_edited"  #: a file's sha256 differs from the one its manifest records
    FILE_MISSING = "file_missing"  #: a file the manifest records is not in the run directory
    FILE_EXTRA = "file_extra"  #: a file in the run directory that the manifest does not record
    MANIFEST_EDITED = "manifest_edited"  #: run.json differs from the hash its ledger entry records
    MANIFEST_INVALID = "manifest_invalid"  #: run.json is not a valid manifest
    RUN_DIR_MISSING = "run_dir_missing"  #: the ledger knows the run, its directory is gone
    UNKNOWN_RUN_DIR = "unknown_run_dir"  #: a run directory that no ledger entry knows
    LEDGER_ENTRY_EDITED = "ledger_entry_edited"  #: an entry's hash does not match its content
    LEDGER_REORDERED = "ledger_reordered"  #: entries out of sequence order
    LEDGER_GAP = "ledger_gap"  #: a sequence number is missing in the middle (a line was removed)
    LEDGER_DUPLICATE = "ledger_duplicate"  #: a run id or sequence number appears twice
    CHAIN_BROKEN = "chain_broken"  #: an entry's prev is not its predecessor's hash
    LEDGER_TRUNCATED = "ledger_truncated"  #: the head anchor records more entries than the ledger holds
    LEDGER_PARTIAL_LINE = "ledger_partial_line"  #: the last line is cut (no newline / not parseable)
    LEDGER_MALFORMED_LINE = "ledger_malformed_line"  #: a line in the middle is not a ledger entry
    HEAD_MISMATCH = "head_mismatch"  #: ledger.head is missing or does not match the last entry
    INTERRUPTED_COMMIT = "interrupted_commit"  #: a commit crashed midway (the next commit completes it)
    INDEX_MISMATCH = "index_mismatch"  #: index.sqlite disagrees with the ledger and manifests (`runs reindex`)
    RUN_NOT_IN_LEDGER = "run_not_in_ledger"  #: the run id asked for has no ledger entry (deleted, or never was)
    # -- an archive in S3 (runbooks.archive.s3verify) and a local copy against it (--against)
    BUCKET_UNLOCKED = "bucket_unlocked"  #: the bucket has no object lock / default retention as the inventory says
    OBJECT_UNLOCKED = "object_unlocked"  #: a record object carries no object-lock retention
    OBJECT_OVERWRITTEN = "object_overwritten"  #: a write-once object has more than one version
    OBJECT_DELETED = "object_deleted"  #: a write-once object was deleted (a delete marker hides it)
    ANCHOR_MISMATCH = "anchor_mismatch"  #: a local ledger entry differs from the anchor's (the bucket's) entry
    UNREADABLE = "unreadable"  #: a file of the archive could not be read (I/O error, permissions, disk)


#: findings of one kind listed in a report; beyond it, one finding says how many more there were
MAX_FINDINGS_PER_KIND = 200


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str | None
    kind: FindingKind
    detail: str


class VerifyReport(BaseModel):
    root: str
    ledger_entries: int
    runs_checked: int
    findings: list[Finding]
    #: what verify could not do as usual without it being a finding (e.g. take the writer lock on a full disk)
    notes: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def for_run(self, run_id: str) -> list[Finding]:
        return [f for f in self.findings if f.run_id == run_id]


_RUN_ID_IN_RAW = re.compile(rb'"run_id":"([^"]+)"|"path":"[^"]*?/([^"/]+)"')


def _run_id_of_raw(raw: bytes) -> str | None:
    m = _RUN_ID_IN_RAW.search(raw)
    if not m:
        return None
    return (m.group(1) or m.group(2)).decode(errors="replace")


class _Snapshot(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    head: LedgerHead | None
    ledger_size: int = 0  #: bytes of the ledger at snapshot time (it is append-only)
    errors: list[str] = Field(default_factory=list)  #: what could not be read
    intent: CommitIntent | None
    run_dirs: dict[str, Path]  #: relative path -> directory
    #: index rows by run id (column name -> value); None when there is no index (it is derived data)
    index: dict[str, dict[str, object]] | None = None
    index_error: str | None = None


def _snapshot(archive: Archive) -> _Snapshot:
    if not archive.root.is_dir():
        return _Snapshot(head=None, intent=None, run_dirs={})
    try:
        lock = archive.lock()
        lock.acquire()
    except OSError as exc:  # e.g. a full disk or a read-only archive: read without the writer lock
        snap = _read_snapshot(archive)
        snap.errors.append(f"ledger.lock could not be taken ({type(exc).__name__}: {exc.strerror or exc}); "
                           "read without it, a commit in progress may show as a finding")  # fmt: skip
        return snap
    try:
        return _read_snapshot(archive)
    finally:
        lock.release()


def _read_snapshot(archive: Archive) -> _Snapshot:
    errors: list[str] = []
    intent = None
    if archive.intent_path.exists():
        try:
            intent = CommitIntent.model_validate_json(archive.intent_path.read_bytes())
        except ValueError:
            intent = None
    index: dict[str, dict[str, object]] | None = None
    index_error = None
    if archive.index.exists():
        names = [*(c.strip() for c in COLUMNS.split(",")), "manifest"]
        try:
            index = {str(r[0]): dict(zip(names, r, strict=True)) for r in archive.index.dump()}
        except (sqlite3.Error, ValueError) as exc:
            index_error = f"{type(exc).__name__}: {exc}"
    try:
        run_dirs = dict(iter_run_dirs(archive.root))
    except OSError as exc:
        run_dirs = {}
        errors.append(f"the run directories could not be listed ({type(exc).__name__}: {exc}); not checked")
    return _Snapshot(
        head=archive.ledger.read_head(),
        ledger_size=archive.ledger.size(),
        errors=errors,
        intent=intent,
        run_dirs=run_dirs,
        index=index,
        index_error=index_error,
    )


class _Findings:
    """Findings as they are found, at most :data:`MAX_FINDINGS_PER_KIND` listed per kind."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self.counts: Counter[FindingKind] = Counter()

    def add(self, run_id: str | None, kind: FindingKind, detail: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_FINDINGS_PER_KIND:
            self.items.append(Finding(run_id=run_id, kind=kind, detail=detail))

    def extend(self, findings: list[Finding]) -> None:
        for f in findings:
            self.add(f.run_id, f.kind, f.detail)

    def done(self) -> list[Finding]:
        out = list(self.items)
        for kind, n in self.counts.items():
            if n > MAX_FINDINGS_PER_KIND:
                out.append(
                    Finding(
                        run_id=None,
                        kind=kind,
                        detail=f"{n - MAX_FINDINGS_PER_KIND} more {kind} finding(s) not listed ({n} in all)",
                    )
                )
        return out


def _check_ledger(archive: Archive, snap: _Snapshot, head_exists: bool, out: _Findings) -> list[LedgerEntry]:
    return check_lines(archive.ledger.iter_lines(limit=snap.ledger_size), snap, head_exists, out)


def check_lines(lines: Iterable[LedgerLine], snap: _Snapshot, head_exists: bool, out: _Findings) -> list[LedgerEntry]:
    """The chain checks over ledger lines as read (streamed: a local ledger.jsonl, or a bucket's entry objects)."""
    entries: list[LedgerEntry] = []
    last: LedgerLine | None = None
    try:
        for ln in lines:
            if last is not None and last.entry is None:
                _report_bad_line(last, out, is_last=False)
            last = ln
            if ln.entry is not None:
                entries.append(ln.entry)
    except OSError as exc:
        out.add(
            None, FindingKind.UNREADABLE, f"ledger.jsonl could not be read to the end ({type(exc).__name__}: {exc})"
        )
    if last is not None and last.entry is None:
        _report_bad_line(last, out, is_last=True)

    for e in entries:
        if e.hash != e.expected_hash():
            out.add(
                e.run_id,
                FindingKind.LEDGER_ENTRY_EDITED,
                f"ledger entry seq {e.seq}: its hash does not match its content",
            )
    for rid, n in Counter(e.run_id for e in entries).items():
        if n > 1:
            out.add(rid, FindingKind.LEDGER_DUPLICATE, f"run id appears {n} times")
    seqs = [e.seq for e in entries]
    for seq, n in Counter(seqs).items():
        if n > 1:
            out.add(None, FindingKind.LEDGER_DUPLICATE, f"seq {_short(seq)} appears {n} times")

    for e, expected in zip(entries, sorted(seqs), strict=True):
        if e.seq != expected:
            out.add(
                e.run_id,
                FindingKind.LEDGER_REORDERED,
                f"entry seq {_short(e.seq)} is where seq {_short(expected)} belongs",
            )

    by_seq = {e.seq: e for e in entries}
    present = sorted(by_seq)
    # gaps from the sorted sequence numbers present: linear in the entries, whatever the values of seq
    before: LedgerEntry | None = None
    for s in [*present, None]:
        lo = before.seq + 1 if before is not None else 1
        hi = (s - 1) if s is not None else lo - 1
        if s is not None and s < 1:
            continue
        after = by_seq[s] if s is not None else None
        subject = after.run_id if after else None
        where = f"(between {before.run_id if before else 'the start'} and {after.run_id if after else 'the end'})"
        if hi - lo < 3:
            for missing in range(lo, hi + 1):
                out.add(subject, FindingKind.LEDGER_GAP, f"ledger entry seq {missing} is missing {where}")
        else:
            count = _short(hi - lo + 1)
            out.add(
                subject, FindingKind.LEDGER_GAP, f"ledger entries seq {lo}..{_short(hi)} ({count}) are missing {where}"
            )
        if s is not None:
            before = by_seq[s]

    for e in entries:
        pred = by_seq.get(e.seq - 1)
        if e.seq == 1 and e.prev != GENESIS:
            out.add(e.run_id, FindingKind.CHAIN_BROKEN, "first entry does not start the chain")
        elif pred is not None and e.prev != pred.hash:
            out.add(
                e.run_id,
                FindingKind.CHAIN_BROKEN,
                f"prev does not match the hash of seq {_short(pred.seq)} ({pred.run_id})",
            )

    out.extend(_check_head(snap, by_seq, present, head_exists))
    return entries


def _short(n: int) -> str:
    """A number for a message: a hostile ``seq`` of thousands of digits is not repeated in full."""
    text = str(n)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _report_bad_line(ln: LedgerLine, out: _Findings, is_last: bool) -> None:
    rid = _run_id_of_raw(ln.raw)
    if is_last and not ln.terminated:
        out.add(rid, FindingKind.LEDGER_PARTIAL_LINE, f"line {ln.lineno} is cut")
    else:
        out.add(rid, FindingKind.LEDGER_MALFORMED_LINE, f"line {ln.lineno}: {ln.error}")


def _check_head(
    snap: _Snapshot, by_seq: dict[int, LedgerEntry], present: list[int], head_exists: bool
) -> list[Finding]:
    head, intent = snap.head, snap.intent
    top = present[-1] if present else 0
    out: list[Finding] = []
    if intent is not None:
        out.append(
            Finding(
                run_id=intent.entry.run_id,
                kind=FindingKind.INTERRUPTED_COMMIT,
                detail="a commit was interrupted; the next commit (or `runbooks runs verify --repair`) completes "
                "or rolls it back",
            )
        )
        if by_seq.get(top) == intent.entry:
            top -= 1  # the interrupted commit's line is there, its head update is not: not a mismatch
    if head is None:
        if top > 0 or head_exists:
            out.append(
                Finding(
                    run_id=None,
                    kind=FindingKind.HEAD_MISMATCH,
                    detail="ledger.head is missing or unreadable: a cut tail cannot be ruled out",
                )
            )
        return out
    if head.count > top:
        out.append(
            Finding(
                run_id=None,
                kind=FindingKind.LEDGER_TRUNCATED,
                detail=f"ledger.head records {_short(head.count)} entries but the ledger ends at seq {_short(top)}: "
                f"entries {_short(top + 1)}..{_short(head.count)} were removed",
            )
        )
    elif head.count < top:
        for s in present:
            if head.count < s <= top:
                out.append(
                    Finding(
                        run_id=by_seq[s].run_id,
                        kind=FindingKind.HEAD_MISMATCH,
                        detail=f"entry seq {_short(s)} is beyond the head anchor ({head.count} entries)",
                    )
                )
    anchored = by_seq.get(head.count)
    if anchored is not None and anchored.hash != head.hash:
        out.append(
            Finding(
                run_id=anchored.run_id,
                kind=FindingKind.HEAD_MISMATCH,
                detail=f"entry seq {_short(head.count)} does not match the hash anchored in ledger.head",
            )
        )
    return out


def check_run(entry: LedgerEntry, run_dir: Path) -> tuple[list[Finding], RunManifest | None]:
    """Findings about one run, and its manifest when it is intact (the one the ledger committed to)."""
    rid = entry.run_id

    def finding(kind: FindingKind, detail: str) -> Finding:
        return Finding(run_id=rid, kind=kind, detail=detail)

    if not run_dir.is_dir():
        return [finding(FindingKind.RUN_DIR_MISSING, f"{entry.path} is gone")], None
    mpath = run_dir / MANIFEST_NAME
    if not mpath.is_file():
        return [finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} is missing")], None
    out: list[Finding] = []
    if sha256_file(mpath) != entry.manifest_sha256:
        out.append(finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} does not match the hash in the ledger"))
    try:
        manifest = RunManifest.model_validate_json(mpath.read_bytes())
    except (ValidationError, ValueError) as exc:
        out.append(finding(FindingKind.MANIFEST_INVALID, str(exc).splitlines()[0]))
        return out, None
    if manifest.run_id != rid:
        out.append(finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} names run {manifest.run_id}"))
    present = set(list_run_files(run_dir))
    for name, digest in sorted(manifest.files.items()):
        if name not in present:
            out.append(finding(FindingKind.FILE_MISSING, name))
        elif sha256_file(run_dir / name) != digest:
            out.append(finding(FindingKind.FILE_EDITED, f"{name} does not match its recorded sha256"))
    for name in sorted(present - set(manifest.files)):
        out.append(finding(FindingKind.FILE_EXTRA, name))
    intact = not any(f.kind in (FindingKind.MANIFEST_EDITED, FindingKind.MANIFEST_INVALID) for f in out)
    return out, manifest if intact else None


_REINDEX = "; `runbooks runs reindex` rebuilds the index from the manifests"


def _check_index(
    snap: _Snapshot, entries: list[LedgerEntry], manifests: dict[str, RunManifest], pending: str | None
) -> list[Finding]:
    """index.sqlite against the ledger and the manifests: a row per ledger entry, equal to what its run.json
    gives, and no other row (``runs list`` answers from the index, so an edited index would lie)."""
    if snap.index_error is not None:
        return [Finding(run_id=None, kind=FindingKind.INDEX_MISMATCH, detail=f"unreadable: {snap.index_error}")]
    if snap.index is None:
        return []
    out: list[Finding] = []
    rows = dict(snap.index)
    for e in entries:
        row = rows.pop(e.run_id, None)
        if row is None:
            if e.path != pending:
                out.append(
                    Finding(
                        run_id=e.run_id,
                        kind=FindingKind.INDEX_MISMATCH,
                        detail=f"the index has no row for this run (`runs list` does not show it){_REINDEX}",
                    )
                )
            continue
        manifest = manifests.get(e.run_id)
        expected: dict[str, object]
        if manifest is not None:
            names = [*(c.strip() for c in COLUMNS.split(",")), "manifest"]
            expected = dict(zip(names, row_values(manifest, e.path, e.manifest_sha256), strict=True))
        else:  # the run itself is already reported: compare what the ledger vouches for
            expected = {**row, "path": e.path, "manifest_sha256": e.manifest_sha256}
        differ = [k for k, v in expected.items() if row.get(k) != v]
        if differ:
            detail = ", ".join(
                f"{k} (index: {row.get(k)!r}, run.json: {expected[k]!r})" if k != "manifest" else k for k in differ
            )
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.INDEX_MISMATCH,
                    detail=f"the index row differs from the ledger and run.json: {detail}{_REINDEX}",
                )
            )
    for rid, row in sorted(rows.items()):
        if row.get("path") == pending:
            continue
        out.append(
            Finding(
                run_id=rid,
                kind=FindingKind.INDEX_MISMATCH,
                detail=f"the index has a row for a run the ledger does not know ({row.get('path')}){_REINDEX}",
            )
        )
    return out


def verify(
    archive: Archive, run_id: str | None = None, *, unchanged: Callable[[LedgerEntry], bool] | None = None
) -> VerifyReport:
    """Check the whole archive, or (with ``run_id``) report only what concerns that run.

    ``unchanged(entry)`` True skips re-hashing that run's files (a caller that knows they were verified
    before and not written since, e.g. the audit site's rebuild); the ledger, the head, the run
    directories and the index rows' paths and hashes are still checked for every run."""
    snap = _snapshot(archive)
    out = _Findings()
    entries = _check_ledger(archive, snap, archive.ledger.head_path.exists(), out)
    known = {e.path for e in entries}
    pending = snap.intent.entry.path if snap.intent else None
    truncated = out.counts[FindingKind.LEDGER_TRUNCATED] > 0
    for rel, _path in snap.run_dirs.items():
        if rel not in known and rel != pending:
            hint = " (its entry may have been cut from the ledger's tail)" if truncated else ""
            out.add(rel.rsplit("/", 1)[-1], FindingKind.UNKNOWN_RUN_DIR, f"{rel} is not in the ledger{hint}")
    checked = 0
    seen: set[str] = set()
    manifests: dict[str, RunManifest] = {}
    for e in entries:
        if (run_id is not None and e.run_id != run_id) or e.path in seen:
            continue
        seen.add(e.path)
        if unchanged is not None and unchanged(e):
            continue
        checked += 1
        try:
            run_findings, manifest = check_run(e, archive.root / e.path)
        except OSError as exc:
            out.add(e.run_id, FindingKind.UNREADABLE, f"{e.path} could not be read ({type(exc).__name__}: {exc})")
            continue
        out.extend(run_findings)
        if manifest is not None:
            manifests[e.run_id] = manifest
    scope = entries if run_id is None else [e for e in entries if e.run_id == run_id]
    if run_id is not None and snap.index is not None:
        snap.index = {k: v for k, v in snap.index.items() if k == run_id}
    out.extend(_check_index(snap, scope, manifests, pending))
    findings = out.done()
    if run_id is not None:
        findings = [f for f in findings if f.run_id == run_id]
        if not any(e.run_id == run_id for e in entries):
            findings.append(
                Finding(
                    run_id=run_id,
                    kind=FindingKind.RUN_NOT_IN_LEDGER,
                    detail="no ledger entry has this run id: its entry was removed, or it was never archived",
                )
            )
    return VerifyReport(
        root=str(archive.root),
        ledger_entries=len(entries),
        runs_checked=checked,
        findings=findings,
        notes=list(snap.errors),
    )
