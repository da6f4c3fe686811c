"""Verification of the archive: every file hash, every manifest hash, the ledger chain and its head.

The ledger, its head, a pending commit intent and the list of run directories are read together
under the writer lock (a consistent snapshot while runs keep being committed); the hashing of the
run directories, which are immutable once committed, happens after the lock is released.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

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
    lines: list[LedgerLine]
    intent: CommitIntent | None
    run_dirs: dict[str, Path]  #: relative path -> directory
    #: index rows by run id (column name -> value); None when there is no index (it is derived data)
    index: dict[str, dict[str, object]] | None = None
    index_error: str | None = None


def _snapshot(archive: Archive) -> _Snapshot:
    if not archive.root.is_dir():
        return _Snapshot(head=None, lines=[], intent=None, run_dirs={})
    with archive.lock():
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
        return _Snapshot(
            head=archive.ledger.read_head(),
            lines=archive.ledger.lines(),
            intent=intent,
            run_dirs=dict(iter_run_dirs(archive.root)),
            index=index,
            index_error=index_error,
        )


def _check_ledger(snap: _Snapshot, head_exists: bool) -> tuple[list[LedgerEntry], list[Finding]]:
    out: list[Finding] = []
    entries: list[LedgerEntry] = []
    for ln in snap.lines:
        if ln.entry is not None:
            entries.append(ln.entry)
            continue
        rid = _run_id_of_raw(ln.raw)
        if ln is snap.lines[-1] and not ln.terminated:
            out.append(Finding(run_id=rid, kind=FindingKind.LEDGER_PARTIAL_LINE, detail=f"line {ln.lineno} is cut"))
        else:
            out.append(
                Finding(run_id=rid, kind=FindingKind.LEDGER_MALFORMED_LINE, detail=f"line {ln.lineno}: {ln.error}")
            )

    for e in entries:
        if e.hash != e.expected_hash():
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.LEDGER_ENTRY_EDITED,
                    detail=f"ledger entry seq {e.seq}: its hash does not match its content",
                )
            )
    for rid, n in Counter(e.run_id for e in entries).items():
        if n > 1:
            out.append(Finding(run_id=rid, kind=FindingKind.LEDGER_DUPLICATE, detail=f"run id appears {n} times"))
    seqs = [e.seq for e in entries]
    for seq, n in Counter(seqs).items():
        if n > 1:
            out.append(Finding(run_id=None, kind=FindingKind.LEDGER_DUPLICATE, detail=f"seq {seq} appears {n} times"))

    for e, expected in zip(entries, sorted(seqs), strict=True):
        if e.seq != expected:
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.LEDGER_REORDERED,
                    detail=f"entry seq {e.seq} is where seq {expected} belongs",
                )
            )

    by_seq = {e.seq: e for e in entries}
    top = max(seqs, default=0)
    for missing in sorted(set(range(1, top + 1)) - set(by_seq)):
        after = next((by_seq[s] for s in range(missing + 1, top + 1) if s in by_seq), None)
        before = next((by_seq[s] for s in range(missing - 1, 0, -1) if s in by_seq), None)
        out.append(
            Finding(
                run_id=after.run_id if after else None,
                kind=FindingKind.LEDGER_GAP,
                detail=f"ledger entry seq {missing} is missing (between "
                f"{before.run_id if before else 'the start'} and {after.run_id if after else 'the end'})",
            )
        )

    for e in entries:
        pred = by_seq.get(e.seq - 1)
        if e.seq == 1 and e.prev != GENESIS:
            out.append(
                Finding(run_id=e.run_id, kind=FindingKind.CHAIN_BROKEN, detail="first entry does not start the chain")
            )
        elif pred is not None and e.prev != pred.hash:
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.CHAIN_BROKEN,
                    detail=f"prev does not match the hash of seq {pred.seq} ({pred.run_id})",
                )
            )

    out.extend(_check_head(snap, by_seq, top, head_exists))
    return entries, out


def _check_head(snap: _Snapshot, by_seq: dict[int, LedgerEntry], top: int, head_exists: bool) -> list[Finding]:
    head, intent = snap.head, snap.intent
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
                detail=f"ledger.head records {head.count} entries but the ledger ends at seq {top}: "
                f"entries {top + 1}..{head.count} were removed",
            )
        )
    elif head.count < top:
        for s in range(head.count + 1, top + 1):
            if s in by_seq:
                out.append(
                    Finding(
                        run_id=by_seq[s].run_id,
                        kind=FindingKind.HEAD_MISMATCH,
                        detail=f"entry seq {s} is beyond the head anchor ({head.count} entries)",
                    )
                )
    anchored = by_seq.get(head.count)
    if anchored is not None and anchored.hash != head.hash:
        out.append(
            Finding(
                run_id=anchored.run_id,
                kind=FindingKind.HEAD_MISMATCH,
                detail=f"entry seq {head.count} does not match the hash anchored in ledger.head",
            )
        )
    return out


def _check_run(entry: LedgerEntry, run_dir: Path) -> tuple[list[Finding], RunManifest | None]:
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
    entries, findings = _check_ledger(snap, head_exists=archive.ledger.head_path.exists())
    known = {e.path for e in entries}
    pending = snap.intent.entry.path if snap.intent else None
    truncated = any(f.kind is FindingKind.LEDGER_TRUNCATED for f in findings)
    for rel, _path in snap.run_dirs.items():
        if rel not in known and rel != pending:
            hint = " (its entry may have been cut from the ledger's tail)" if truncated else ""
            findings.append(
                Finding(
                    run_id=rel.rsplit("/", 1)[-1],
                    kind=FindingKind.UNKNOWN_RUN_DIR,
                    detail=f"{rel} is not in the ledger{hint}",
                )
            )
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
        run_findings, manifest = _check_run(e, archive.root / e.path)
        findings.extend(run_findings)
        if manifest is not None:
            manifests[e.run_id] = manifest
    scope = entries if run_id is None else [e for e in entries if e.run_id == run_id]
    if run_id is not None and snap.index is not None:
        snap.index = {k: v for k, v in snap.index.items() if k == run_id}
    findings.extend(_check_index(snap, scope, manifests, pending))
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
    return VerifyReport(root=str(archive.root), ledger_entries=len(entries), runs_checked=checked, findings=findings)
