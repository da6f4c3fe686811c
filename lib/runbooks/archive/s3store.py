"""The archive of record in an object-locked S3 bucket: ``s3://bucket/prefix`` (or ``audit:ENV``).

Layout under the prefix::

    ledger/000000000001.json     one object per ledger entry (the same LedgerEntry as the local ledger line)
    runs/YYYY/MM/DD/<run_id>/    run.json and the run's files (the same relative path as a local archive)
    locks/<environment>.json     environment leases (runbooks.archive.lease)
    state/...                    resumable state of procedures

**Append without a coordinator.** A commit writes the run's files, then its ``run.json`` (each created with
``If-None-Match: *``), then claims the next sequence number by creating ``ledger/<seq>.json`` with
``If-None-Match: *``: of two writers on two machines only one can create it (412 for the other), and the
loser re-reads the head (the last ledger key) and tries the next number. Every object gets the bucket's
default object-lock retention (mode and days from the inventory), so the ``audit-writer`` credential,
which may put and read but not delete, overwrite history or change retention, cannot rewrite the past.

**Nothing lost when S3 is away.** A commit that cannot reach the endpoint goes into a local *spool* (a local
archive under ``$RUNBOOKS_SPOOL``, default ``~/.local/state/runbooks/spool/<bucket>/<prefix>``) and is shipped,
in order, by ``runbooks runs sync`` or automatically before the next commit to the bucket.

**Queries** (``runs list``/``show``) answer from a local sqlite cache of the bucket's manifests
(``$RUNBOOKS_CACHE``, default ``~/.cache/runbooks``), brought up to date from the ledger on each use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from runbooks.archive.canonical import model_canonical_json, sha256_hex
from runbooks.archive.index import RunIndex
from runbooks.archive.layout import MANIFEST_NAME, check_file_name, is_safe_run_id, run_rel_path
from runbooks.archive.ledger import GENESIS, LedgerEntry, LedgerHead, LedgerLine, parse_line, write_atomic
from runbooks.archive.manifest import RunManifest
from runbooks.archive.objects import S3Objects, StoreUnavailable, s3_errors
from runbooks.archive.store import Archive, ArchiveError
from runbooks.archive.stores import ArchiveStore, Committed, HeldLock
from runbooks.archive.verify import Finding, FindingKind, VerifyReport, _Findings, _Snapshot, check_lines
from runbooks.inventory.models import Environment, ObjectLock

SPOOL_ENV = "RUNBOOKS_SPOOL"
CACHE_ENV = "RUNBOOKS_CACHE"
AUDIT_PREFIX = "archive"  #: the prefix of ``audit:ENV`` in the environment's audit bucket
LEDGER = "ledger"
RUNS = "runs"
SEALS = "seals"  #: verified prefixes of the archive (runbooks.archive.s3verify)
WORKERS = 16
MAX_CLAIMS = 10_000  #: a writer gives up claiming a sequence number after this many lost races
T = TypeVar("T")
R = TypeVar("R")


def entry_key(seq: int) -> str:
    return f"{LEDGER}/{seq:012d}.json"


def seq_of_key(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if name.isdigit() else None


def run_key(rel: str, name: str) -> str:
    return f"{RUNS}/{rel}/{name}"


def parse_s3_url(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1] if "://" in url else url
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ArchiveError(f"{url!r}: give the archive as s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def _home_dir(env: str, default: Path) -> Path:
    return Path(os.environ[env]).expanduser() if os.environ.get(env) else default


def spool_root(bucket: str, prefix: str) -> Path:
    base = _home_dir(SPOOL_ENV, Path.home() / ".local" / "state" / "runbooks" / "spool")
    return base / bucket / (prefix.replace("/", "__") or "_")


def cache_root() -> Path:
    return _home_dir(CACHE_ENV, Path.home() / ".cache" / "runbooks")


def inventory_for_bucket(bucket: str, environment: str | None) -> Environment | None:
    """The inventory whose audit bucket is ``bucket`` (``environment``'s first), or None."""
    from runbooks.inventory.loader import load
    from runbooks.paths import known_environments

    names = [environment] if environment else []
    names += [n for n in known_environments() if n != environment]
    for name in names:
        try:
            env = load(name)
        except Exception:  # an environment whose inventory cannot load (e.g. no twin) is not this bucket's
            continue
        if env.audit_bucket is not None and env.audit_bucket.name == bucket:
            return env
    return None


def client_for(env: Environment | None) -> Any:
    """A boto3 S3 client: the inventory's endpoint and ``audit-writer`` credential, else boto3's defaults."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        read_timeout=20,
        max_pool_connections=WORKERS * 2,
        s3={"addressing_style": "path"},
    )
    if env is None:
        return boto3.client("s3", config=config)
    kwargs: dict[str, Any] = {"region_name": env.endpoints.s3_region, "config": config}
    if env.endpoints.s3:
        kwargs["endpoint_url"] = env.endpoints.s3
    cred = env.credentials.s3_audit_writer
    if cred is not None:
        from runbooks.secrets import secret  # registered with the redactor: never reaches a record

        kwargs["aws_access_key_id"] = secret(cred.access_key_id)
        kwargs["aws_secret_access_key"] = secret(cred.secret_access_key)
    return boto3.client("s3", **kwargs)


def from_url(url: str, environment: str | None) -> S3Store:
    bucket, prefix = parse_s3_url(url)
    env = inventory_for_bucket(bucket, environment)
    lock = env.audit_bucket.object_lock if env is not None and env.audit_bucket is not None else None
    return S3Store(client_for(env), bucket, prefix, expected_lock=lock)


def from_audit_url(url: str, environment: str | None) -> S3Store:
    """``audit:ENV`` (or ``audit:`` with the run's environment): the audit bucket of ``ENV``'s inventory."""
    from runbooks.inventory.loader import load

    name = url.split(":", 1)[1].strip("/") or environment
    if not name:
        raise ArchiveError("audit: needs an environment: RUNBOOKS_ARCHIVE=audit:production (or run with --env)")
    env = load(name)
    if env.audit_bucket is None:
        raise ArchiveError(f"the {name} inventory has no bucket with role audit; add one or give s3://BUCKET/PREFIX")
    return S3Store(client_for(env), env.audit_bucket.name, AUDIT_PREFIX, expected_lock=env.audit_bucket.object_lock)


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(fn, items))


def seal(manifest: RunManifest, files: dict[str, bytes]) -> tuple[RunManifest, bytes, str]:
    """The manifest as archived (with every file's sha256), its canonical bytes and the run's relative path."""
    if not is_safe_run_id(manifest.run_id):
        raise ArchiveError(f"unsafe run id {manifest.run_id!r}")
    for name in files:
        check_file_name(name)
    final = manifest.model_copy(update={"files": {n: sha256_hex(d) for n, d in sorted(files.items())}})
    return final, model_canonical_json(final) + b"\n", run_rel_path(manifest.run_id, manifest.started_at)


class S3Store(ArchiveStore):
    """An archive in ``s3://bucket/prefix`` (see the module docstring)."""

    objects: S3Objects

    def __init__(self, client: Any, bucket: str, prefix: str, expected_lock: ObjectLock | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.objects = S3Objects(client, bucket, self.prefix)
        self.expected_lock = expected_lock
        self._head_cache: tuple[int, str] | None = None
        self._spool: Archive | None = None

    # -- the spool ----------------------------------------------------------------------------------
    @property
    def spool(self) -> Archive:
        if self._spool is None:
            self._spool = Archive(spool_root(self.bucket, self.prefix))
        return self._spool

    def _shipped_path(self) -> Path:
        return self.spool.root / "shipped.json"

    def _shipped(self) -> int:
        try:
            return int(json.loads(self._shipped_path().read_text())["count"])
        except (FileNotFoundError, ValueError, KeyError):
            return 0

    def pending(self) -> list[LedgerEntry]:
        """Spooled runs not shipped yet, in their order."""
        if not self.spool.ledger.path.exists():
            return []
        return self.spool.ledger.entries()[self._shipped() :]

    def sync(self) -> list[str]:
        """Ship the spooled runs in order (raises StoreUnavailable if the bucket is still away)."""
        shipped: list[str] = []
        pending = self.pending()
        if not pending:
            return shipped
        with self.spool.lock():
            done = self._shipped()
            for e in self.spool.ledger.entries()[done:]:
                run_dir = self.spool.root / e.path
                body = (run_dir / MANIFEST_NAME).read_bytes()
                manifest = RunManifest.model_validate_json(body)
                files = {name: (run_dir / name).read_bytes() for name in manifest.files}
                self._ship(e.path, e.run_id, body, files)
                done += 1
                write_atomic(self._shipped_path(), json.dumps({"count": done}).encode())
                shipped.append(e.run_id)
        return shipped

    # -- writing ------------------------------------------------------------------------------------
    def check_writable(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._head()
        except StoreUnavailable:
            self.spool.root.mkdir(parents=True, exist_ok=True)  # the run will be spooled: the spool must work
            if not os.access(self.spool.root, os.W_OK):
                raise PermissionError(
                    f"{self.url} is unreachable and the spool {self.spool.root} is not writable"
                ) from None
        except ClientError as e:
            raise PermissionError(f"the archive {self.url} cannot be read: {e}") from None

    def commit(self, manifest: RunManifest, files: dict[str, bytes]) -> Committed:
        final, body, rel = seal(manifest, files)
        try:
            self.sync()  # runs spooled earlier go first: the bucket keeps their order
            entry = self._ship(rel, final.run_id, body, files)
        except StoreUnavailable as e:
            run_dir = self.spool.commit(manifest, files)
            return Committed(str(run_dir), run_dir, spooled=True, note=str(e))
        self._cache_index([(final, entry)])
        return Committed(f"{self.url}/{run_key(rel, '')}".rstrip("/"), None)

    def _put_once(self, key: str, data: bytes) -> bool:
        """Create ``key``; True if created, False if it already held exactly ``data`` (a resumed shipment)."""
        if self.objects.create_if_absent(key, data) is not None:
            return True
        existing = self.objects.get(key)
        if existing is None or existing.data != data:
            raise ArchiveError(f"{self.url}/{key} already exists with other content; refusing to overwrite it")
        return False

    def _ship(self, rel: str, run_id: str, body: bytes, files: dict[str, bytes]) -> LedgerEntry:
        """Files, then run.json, then claim the next ledger entry (retrying on a lost race)."""
        for name, data in sorted(files.items()):
            self._put_once(run_key(rel, name), data)
        fresh = self._put_once(run_key(rel, MANIFEST_NAME), body)
        manifest_sha = sha256_hex(body)
        if not fresh:  # shipped before, interrupted after run.json: its entry may be there already
            seq, _ = self._head()
            for s in range(seq, max(0, seq - 50), -1):
                got = self.objects.get(entry_key(s))
                if got is not None and LedgerEntry.model_validate_json(got.data).run_id == run_id:
                    return LedgerEntry.model_validate_json(got.data)
        for _ in range(MAX_CLAIMS):
            seq, prev = self._head()
            entry = LedgerEntry.make(seq + 1, run_id, rel, manifest_sha, prev)
            if self.objects.create_if_absent(entry_key(entry.seq), entry.line()) is not None:
                self._head_cache = (entry.seq, entry.hash)
                return entry
            self._head(refresh=True)  # another writer took that number: read the new head, try the next one
        raise ArchiveError(f"could not claim a ledger entry in {self.url} after {MAX_CLAIMS} attempts")

    def _head(self, refresh: bool = False) -> tuple[int, str]:
        """The last ledger entry's (seq, hash): listed after the last one this process knows."""
        start = entry_key(self._head_cache[0]) if self._head_cache else None
        last = None
        for key in self.objects.list_keys(LEDGER, start_after=start):
            last = key
        if last is not None:
            got = self.objects.get(last)
            if got is not None:
                entry = LedgerEntry.model_validate_json(got.data)
                self._head_cache = (entry.seq, entry.hash)
        return self._head_cache or (0, GENESIS)

    # -- locks --------------------------------------------------------------------------------------
    def acquire_lock(self, environment: str, *, run_id: str, actor: str) -> HeldLock:
        from runbooks.archive import lease

        return lease.acquire(self.objects, environment, run_id=run_id, actor=actor, where=f"{self.url}/locks")

    def read_lock(self, environment: str) -> dict[str, Any] | None:
        from runbooks.archive import lease

        return lease.read_holder(self.objects, environment)

    # -- reading ------------------------------------------------------------------------------------
    def _ledger_keys(self) -> list[str]:
        return list(self.objects.list_keys(LEDGER))

    def _fetch(self, key: str) -> bytes | None:
        got = self.objects.get(key)
        return got.data if got is not None else None

    def entries(self) -> list[LedgerEntry]:
        datas = _parallel(self._fetch, self._ledger_keys())
        out = [LedgerEntry.model_validate_json(d) for d in datas if d is not None]
        return sorted(out, key=lambda e: e.seq)

    def _index_paths(self) -> tuple[Path, Path]:
        tag = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        d = cache_root() / "index"
        return d / f"{self.bucket}-{tag}.sqlite", d / f"{self.bucket}-{tag}.seq"

    def _cache_index(self, rows: list[tuple[RunManifest, LedgerEntry]]) -> None:
        db, _ = self._index_paths()
        if db.exists():
            idx = RunIndex(db)
            for manifest, entry in rows:
                idx.upsert(manifest, entry.path, entry.manifest_sha256)

    def index(self) -> RunIndex:
        """The local cache of the bucket's manifests, brought up to date from the ledger."""
        db, seq_file = self._index_paths()
        db.parent.mkdir(parents=True, exist_ok=True)
        idx = RunIndex(db)
        try:
            known = int(seq_file.read_text()) if db.exists() else 0
        except (FileNotFoundError, ValueError):
            known = 0
        keys = list(self.objects.list_keys(LEDGER, start_after=entry_key(known) if known else None))
        entries = [LedgerEntry.model_validate_json(d) for d in _parallel(self._fetch, keys) if d is not None]
        bodies = _parallel(lambda e: self._fetch(run_key(e.path, MANIFEST_NAME)), entries)
        rows = []
        for e, body in zip(entries, bodies, strict=True):
            try:
                if body is not None:
                    rows.append(_row(RunManifest.model_validate_json(body), e))
            except ValidationError:
                continue  # verify reports it; the index holds readable manifests only
        idx.insert_many(rows)
        top = max((e.seq for e in entries), default=known)
        write_atomic_text(seq_file, str(top))
        return idx

    def reindex(self) -> int:
        for p in self._index_paths():
            p.unlink(missing_ok=True)
        return self.index().count()

    def _path_of(self, run_id: str) -> str:
        rel = self.index().path_of(run_id)
        if rel is None:
            raise ArchiveError(f"no run {run_id!r} in {self.url}")
        return rel

    def read_manifest(self, run_id: str) -> RunManifest:
        return RunManifest.model_validate_json(self.read_file(run_id, MANIFEST_NAME))

    def read_file(self, run_id: str, name: str) -> bytes:
        data = self._fetch(run_key(self._path_of(run_id), name))
        if data is None:
            raise ArchiveError(f"{self.url}: run {run_id} has no {name}")
        return data

    def location_of(self, run_id: str) -> str | None:
        try:
            return f"{self.url}/{run_key(self._path_of(run_id), '')}".rstrip("/")
        except ArchiveError:
            return None

    # -- verification -------------------------------------------------------------------------------
    def verify(self, run_id: str | None = None, deep: bool = False) -> VerifyReport:
        from runbooks.archive.s3verify import verify_bucket

        return verify_bucket(self, run_id, deep=deep)


def _row(manifest: RunManifest, entry: LedgerEntry) -> Any:
    from runbooks.archive.index import row_values

    return row_values(manifest, entry.path, entry.manifest_sha256)


def write_atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode())


def ledger_lines(keys: list[str], datas: list[bytes | None]) -> tuple[list[LedgerLine], list[Finding]]:
    """Ledger objects as the lines the chain check reads; an object under another seq's key is a finding."""
    lines: list[LedgerLine] = []
    findings: list[Finding] = []
    for key, data in zip(keys, datas, strict=True):
        seq = seq_of_key(key) or 0
        if data is None:
            continue
        line = parse_line(seq, data.rstrip(b"\n"), True)
        lines.append(line)
        if line.entry is not None and line.entry.seq != seq:
            findings.append(
                Finding(
                    run_id=line.entry.run_id,
                    kind=FindingKind.LEDGER_ENTRY_EDITED,
                    detail=f"{key} holds the entry of seq {line.entry.seq}",
                )
            )
    return lines, findings


def check_chain(lines: list[LedgerLine]) -> tuple[list[LedgerEntry], list[Finding]]:
    """The local ledger's chain checks over the bucket's entries (the head is the last object)."""
    parsed = [ln.entry for ln in lines if ln.entry is not None]
    last = max(parsed, key=lambda e: e.seq, default=None)
    head = LedgerHead(count=last.seq, hash=last.hash) if last else None
    snap = _Snapshot(head=head, intent=None, run_dirs={})
    out = _Findings()
    entries = check_lines(lines, snap, head is not None, out)
    return entries, out.done()


__all__ = ["S3Store", "StoreUnavailable", "from_audit_url", "from_url", "s3_errors", "seal"]
