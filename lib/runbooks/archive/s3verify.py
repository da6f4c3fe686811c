"""Verification of an archive in S3, and of a local archive against it (``runs verify --against``).

:func:`verify_bucket` checks, with the same finding kinds as a local verify:

- the bucket's protection: object lock enabled with a default retention at least as strong as the
  inventory's (mode and days), and the newest ledger object carrying retention (``bucket_unlocked``,
  ``object_unlocked``);
- the whole chain: one object per entry, contiguous sequence numbers, each ``prev`` the previous hash;
- each run: ``run.json`` matches the ledger's hash, every file its recorded sha256, no extra file, and no
  run directory the ledger does not know;
- with ``deep``, also history untouched: no write-once object with a second version or a delete marker
  (``object_overwritten``, ``object_deleted``), from a listing of the prefix's versions.

A clean verification of the whole archive writes a *seal* (``seals/<seq>.json``: the entries verified and
every object's ETag); the next verification checks the sealed runs against the seal from one
``ListObjectsV2`` listing and reads only what came since (``deep`` ignores seals). Objects are fetched by a
thread pool (see ``bench/archive_s3.py`` for 10,000 runs).

:func:`compare_with_anchor` compares a local archive's ledger with the bucket's, entry by entry: a local
copy whose tail was cut, or whose last record was rewritten (with its ``ledger.head``), no longer matches.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from runbooks.archive.canonical import sha256_hex
from runbooks.archive.layout import MANIFEST_NAME
from runbooks.archive.ledger import LedgerEntry, parse_line
from runbooks.archive.manifest import RunManifest
from runbooks.archive.objects import PAGE, s3_errors
from runbooks.archive.s3store import (
    LEDGER,
    RUNS,
    SEALS,
    S3Store,
    _parallel,
    check_chain,
    entry_key,
    ledger_lines,
    run_key,
    seq_of_key,
)
from runbooks.archive.stores import ArchiveStore
from runbooks.archive.verify import Finding, FindingKind, VerifyReport

_MODE_STRENGTH = {"GOVERNANCE": 1, "COMPLIANCE": 2}


def check_protection(store: S3Store, newest: str | None) -> list[Finding]:
    """Object lock on the bucket as the inventory says, and retention on the newest record."""
    from botocore.exceptions import ClientError

    out: list[Finding] = []
    with s3_errors():
        try:
            conf = store.client.get_object_lock_configuration(Bucket=store.bucket)["ObjectLockConfiguration"]
        except ClientError as e:
            conf = {}
            if e.response.get("Error", {}).get("Code") not in ("ObjectLockConfigurationNotFoundError", "NoSuchKey"):
                raise
    retention = conf.get("Rule", {}).get("DefaultRetention", {}) if conf.get("ObjectLockEnabled") == "Enabled" else {}
    if not retention:
        out.append(
            Finding(
                run_id=None,
                kind=FindingKind.BUCKET_UNLOCKED,
                detail=f"{store.bucket} has no object lock with a default retention: records can be deleted or "
                "overwritten; enable object lock with the inventory's mode and days",
            )
        )
    elif store.expected_lock is not None:
        want = store.expected_lock
        days = int(retention.get("Days") or 0) or 365 * int(retention.get("Years") or 0)
        mode = str(retention.get("Mode"))
        if days < want.days or _MODE_STRENGTH.get(mode, 0) < _MODE_STRENGTH[want.mode]:
            out.append(
                Finding(
                    run_id=None,
                    kind=FindingKind.BUCKET_UNLOCKED,
                    detail=f"{store.bucket} retains {mode} for {days} day(s); the inventory says {want.mode} for "
                    f"{want.days}",
                )
            )
    if newest is not None and not out:
        with s3_errors():
            head = store.client.head_object(Bucket=store.bucket, Key=store.objects.full(newest))
        if not head.get("ObjectLockMode") or not head.get("ObjectLockRetainUntilDate"):
            out.append(Finding(run_id=None, kind=FindingKind.OBJECT_UNLOCKED, detail=f"{newest} carries no retention"))
    return out


def _live(store: S3Store) -> dict[str, str]:
    """Every current object under the prefix with its ETag (one ``ListObjectsV2`` listing)."""
    live: dict[str, str] = {}
    cut = len(store.prefix) + 1 if store.prefix else 0
    prefix = f"{store.prefix}/" if store.prefix else ""
    with s3_errors():
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=prefix, PaginationConfig=PAGE
        )
        for page in pages:
            for obj in page.get("Contents", []):
                live[obj["Key"][cut:]] = str(obj["ETag"])
    return live


def _versions(store: S3Store) -> tuple[dict[str, int], set[str], dict[str, str]]:
    """Per key its number of versions, the keys hidden by a delete marker, and the live keys' ETags
    (``ListObjectVersions``: only for ``--deep``, it is the slow listing)."""
    counts: dict[str, int] = defaultdict(int)
    deleted: set[str] = set()
    live: dict[str, str] = {}
    cut = len(store.prefix) + 1 if store.prefix else 0
    prefix = f"{store.prefix}/" if store.prefix else ""
    with s3_errors():
        for page in store.client.get_paginator("list_object_versions").paginate(Bucket=store.bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                key = v["Key"][cut:]
                counts[key] += 1
                if v.get("IsLatest"):
                    live[key] = str(v.get("ETag"))
            for m in page.get("DeleteMarkers", []):
                if m.get("IsLatest"):
                    deleted.add(m["Key"][cut:])
    return counts, deleted, live


def _history(key: str) -> bool:
    return key.startswith((f"{LEDGER}/", f"{RUNS}/", f"{SEALS}/"))


def seal_key(top: int) -> str:
    return f"{SEALS}/{top:012d}.json"


def _latest_seal(store: S3Store, live: dict[str, str]) -> dict[str, Any] | None:
    """The newest seal (a verified prefix of the archive), if any; an unreadable seal is ignored."""
    keys = sorted(k for k in live if k.startswith(f"{SEALS}/"))
    if not keys:
        return None
    data = store._fetch(keys[-1])
    try:
        seal = json.loads(data or b"")
        seal["key"] = keys[-1]
        return seal if isinstance(seal.get("versions"), dict) and isinstance(seal.get("entries"), list) else None
    except (ValueError, AttributeError):
        return None


def _check_sealed(
    seal: dict[str, Any], entries: list[LedgerEntry], live: dict[str, str], files_of: dict[str, set[str]]
) -> list[Finding]:
    """Sealed runs: every object still has the ETag the seal verified (a replaced object gets another one)."""
    versions: dict[str, str] = seal["versions"]
    by_run: dict[str, set[str]] = defaultdict(set)
    for k in versions:
        prefix = _run_prefix(k)
        if prefix is not None:
            by_run[prefix].add(k)
    out: list[Finding] = []
    for e in entries:
        keys = {run_key(e.path, name) for name in files_of.get(e.path, set())}
        sealed = by_run.get(run_key(e.path, ""), set())
        for key in sorted(sealed - keys):
            out.append(Finding(run_id=e.run_id, kind=FindingKind.FILE_MISSING, detail=key.rsplit("/", 1)[-1]))
        for key in sorted(keys - sealed):
            out.append(Finding(run_id=e.run_id, kind=FindingKind.FILE_EXTRA, detail=key.rsplit("/", 1)[-1]))
        for key in sorted(keys & sealed):
            if live.get(key) != versions[key]:
                out.append(
                    Finding(
                        run_id=e.run_id,
                        kind=FindingKind.FILE_EDITED,
                        detail=f"{key.rsplit('/', 1)[-1]} is not the object verified by {seal['key']}",
                    )
                )
    return out


def write_seal(store: S3Store, entries: list[LedgerEntry], live: dict[str, str]) -> str | None:
    """Record a clean verification: the entries and the ETag of every object verified (best effort)."""
    from botocore.exceptions import ClientError

    from runbooks.archive.objects import StoreUnavailable

    if not entries:
        return None
    paths = {run_key(e.path, "") for e in entries}
    versions = {
        k: v
        for k, v in live.items()
        if k.startswith(f"{LEDGER}/") or (_run_prefix(k) is not None and _run_prefix(k) in paths)
    }
    body = {
        "top": entries[-1].seq,
        "head": entries[-1].hash,
        "entries": [e.model_dump() for e in entries],
        "versions": versions,
    }
    try:
        created = store.objects.create_if_absent(seal_key(entries[-1].seq), json.dumps(body, sort_keys=True).encode())
    except (ClientError, StoreUnavailable):
        return None  # a read-only credential, or the store went away: the next verify reads everything again
    return seal_key(entries[-1].seq) if created else None


def _run_prefix(key: str) -> str | None:
    rel = _run_of_key(key)
    return run_key(rel, "") if rel is not None else None


def _run_of_key(key: str) -> str | None:
    """``runs/YYYY/MM/DD/<run_id>/<file>`` -> ``YYYY/MM/DD/<run_id>``."""
    parts = key.split("/")
    return "/".join(parts[1:5]) if len(parts) >= 6 and parts[0] == RUNS else None


def _check_run(store: S3Store, entry: LedgerEntry, present: set[str]) -> tuple[list[Finding], RunManifest | None]:
    def finding(kind: FindingKind, detail: str) -> Finding:
        return Finding(run_id=entry.run_id, kind=kind, detail=detail)

    if not present:
        return [finding(FindingKind.RUN_DIR_MISSING, f"{run_key(entry.path, '')} is gone")], None
    body = store._fetch(run_key(entry.path, MANIFEST_NAME)) if MANIFEST_NAME in present else None
    if body is None:
        return [finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} is missing")], None
    out: list[Finding] = []
    if sha256_hex(body) != entry.manifest_sha256:
        out.append(finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} does not match the hash in the ledger"))
    try:
        manifest = RunManifest.model_validate_json(body)
    except (ValidationError, ValueError) as exc:
        return [*out, finding(FindingKind.MANIFEST_INVALID, str(exc).splitlines()[0])], None
    if manifest.run_id != entry.run_id:
        out.append(finding(FindingKind.MANIFEST_EDITED, f"{MANIFEST_NAME} names run {manifest.run_id}"))
    for name, digest in sorted(manifest.files.items()):
        if name not in present:
            out.append(finding(FindingKind.FILE_MISSING, name))
            continue
        data = store._fetch(run_key(entry.path, name))
        if data is None or sha256_hex(data) != digest:
            out.append(finding(FindingKind.FILE_EDITED, f"{name} does not match its recorded sha256"))
    for name in sorted(present - set(manifest.files) - {MANIFEST_NAME}):
        out.append(finding(FindingKind.FILE_EXTRA, name))
    return out, manifest


def verify_bucket(store: S3Store, run_id: str | None = None, deep: bool = False) -> VerifyReport:
    """Verify the bucket (see the module docstring). Runs covered by the newest seal are checked by ETag
    only (unless ``deep``); a clean whole-archive verification seals what it verified."""
    if deep:
        counts, deleted, live = _versions(store)
    else:
        counts, deleted, live = {}, set(), _live(store)
    seal = None if deep else _latest_seal(store, live)
    sealed_entries = [LedgerEntry.model_validate(e) for e in seal["entries"]] if seal else []
    top = sealed_entries[-1].seq if sealed_entries else 0
    keys = sorted(k for k in live if k.startswith(f"{LEDGER}/"))
    findings: list[Finding] = []
    if seal is not None:
        for e in sealed_entries:  # every sealed entry object is the version the seal read
            key = entry_key(e.seq)
            if key in live and live[key] != seal["versions"].get(key):
                findings.append(
                    Finding(
                        run_id=e.run_id,
                        kind=FindingKind.LEDGER_ENTRY_EDITED,
                        detail=f"{key} is not the object verified by {seal['key']}",
                    )
                )
        missing = [e for e in sealed_entries if entry_key(e.seq) not in live]
        for e in missing:
            findings.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.OBJECT_DELETED,
                    detail=f"{entry_key(e.seq)}, verified by {seal['key']}, is gone",
                )
            )
        sealed_lines = [parse_line(e.seq, e.line().rstrip(b"\n"), True) for e in sealed_entries if e not in missing]
        fresh = [k for k in keys if (seq_of_key(k) or 0) > top]
    else:
        sealed_lines, fresh = [], keys
    lines, moved = ledger_lines(fresh, _parallel(store._fetch, fresh))
    findings += moved
    entries, chain = check_chain(sealed_lines + lines)
    findings += chain
    findings += check_protection(store, keys[-1] if keys else None)
    for key in sorted(k for k, n in counts.items() if n > 1 and _history(k)):
        findings.append(
            Finding(run_id=None, kind=FindingKind.OBJECT_OVERWRITTEN, detail=f"{key} has {counts[key]} versions")
        )
    for key in sorted(k for k in deleted if _history(k)):
        findings.append(Finding(run_id=None, kind=FindingKind.OBJECT_DELETED, detail=f"{key} was deleted"))

    files_of: dict[str, set[str]] = defaultdict(set)
    for key in live:
        rel = _run_of_key(key)
        if rel is not None:
            files_of[rel].add(key[len(run_key(rel, "")) :])
    known = {e.path for e in entries}
    for rel in sorted(set(files_of) - known):
        findings.append(
            Finding(
                run_id=rel.rsplit("/", 1)[-1], kind=FindingKind.UNKNOWN_RUN_DIR, detail=f"{rel} is not in the ledger"
            )
        )
    scope = [e for e in entries if run_id is None or e.run_id == run_id]
    if seal is not None:
        findings += _check_sealed(seal, [e for e in scope if e.seq <= top], live, files_of)
    results = _parallel(lambda e: _check_run(store, e, files_of.get(e.path, set())), [e for e in scope if e.seq > top])
    for run_findings, _manifest in results:
        findings += run_findings
    if run_id is not None:
        findings = [f for f in findings if f.run_id == run_id]
        if not scope:
            findings.append(
                Finding(run_id=run_id, kind=FindingKind.RUN_NOT_IN_LEDGER, detail=f"no ledger entry in {store.url}")
            )
    elif not findings and entries and entries[-1].seq > top:
        write_seal(store, entries, live)
    return VerifyReport(root=store.url, ledger_entries=len(entries), runs_checked=len(scope), findings=findings)


def compare_with_anchor(local: ArchiveStore, anchor: ArchiveStore) -> list[Finding]:
    """A local archive's ledger against the anchor's (the bucket's): equal entries, and no cut tail."""
    mine = {e.seq: e for e in local.entries()}
    theirs = {e.seq: e for e in anchor.entries()}
    out: list[Finding] = []
    for seq in sorted(mine):
        e, a = mine[seq], theirs.get(seq)
        if a is None:
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.ANCHOR_MISMATCH,
                    detail=f"local entry seq {seq} is not in {anchor.url}",
                )
            )
        elif a != e:
            what = "another run" if a.run_id != e.run_id else "another record (manifest hash or chain)"
            out.append(
                Finding(
                    run_id=e.run_id,
                    kind=FindingKind.ANCHOR_MISMATCH,
                    detail=f"local entry seq {seq} differs from {anchor.url}: the anchor has {what} ({a.run_id})",
                )
            )
    top, anchor_top = max(mine, default=0), max(theirs, default=0)
    if anchor_top > top:
        cut = [theirs[s].run_id for s in range(top + 1, anchor_top + 1) if s in theirs]
        out.append(
            Finding(
                run_id=cut[0] if cut else None,
                kind=FindingKind.LEDGER_TRUNCATED,
                detail=f"the local ledger ends at seq {top} but {anchor.url} holds {anchor_top} entries: "
                f"{len(cut)} entr(y/ies) missing locally (a cut tail, or a copy not brought up to date)",
            )
        )
    return out


def mirror(anchor: ArchiveStore, local: Any) -> list[str]:
    """Copy the anchor's entries beyond the local ledger's end into a local archive, exactly (same seq and
    hashes): a local copy to read offline and to check with ``--against``. Returns the run ids copied."""
    from runbooks.archive.store import Archive

    assert isinstance(local, Archive)
    copied: list[str] = []
    with local.lock():
        local._recover_locked()
        top = max((e.seq for e in local.ledger.entries()), default=0)
        for e in anchor.entries():
            if e.seq <= top:
                continue
            body = _anchor_file(anchor, e, MANIFEST_NAME)
            manifest = RunManifest.model_validate_json(body)
            target = local.root / e.path
            target.mkdir(parents=True, exist_ok=False)
            for name in manifest.files:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(_anchor_file(anchor, e, name))
            (target / MANIFEST_NAME).write_bytes(body)
            local.ledger.append(e)
            local.ledger.write_head(e)
            local.index.upsert(manifest, e.path, e.manifest_sha256)
            copied.append(e.run_id)
    return copied


def _anchor_file(anchor: ArchiveStore, entry: LedgerEntry, name: str) -> bytes:
    if isinstance(anchor, S3Store):
        data = anchor._fetch(run_key(entry.path, name))
        if data is None:
            raise FileNotFoundError(f"{anchor.url}: {run_key(entry.path, name)} is missing")
        return data
    return anchor.read_file(entry.run_id, name)


__all__ = ["compare_with_anchor", "entry_key", "mirror", "verify_bucket"]
