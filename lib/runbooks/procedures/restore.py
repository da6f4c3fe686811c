"""The restore drill: prove a backup restores, with the drill-only credential, and measure RTO and RPO.

Steps (each timed): read the sidecar; stream the object (pinned to the sidecar's version id) through
sha256 + age decryption + zstd decompression into a dump file on local disk (``pg_restore -j`` needs a
seekable file); refuse it if the sha256 or size differ from the sidecar; ``pg_restore -j N`` into a
fresh scratch database; compare row counts and the schema signature with the sidecar; drop the
scratch database, also when a step failed.
"""

from __future__ import annotations

import hashlib
import io
import secrets as _secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
import zstandard
from pyrage import x25519

from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment
from runbooks.plan import utcnow
from runbooks.providers.postgres import Postgres, row_counts, schema_signature
from runbooks.providers.s3 import S3
from runbooks.state.backups import BACKUP_SUFFIX, MANIFEST_FORMAT, latest_backup, manifest_key

CHUNK = 1 << 20


class DrillError(RuntimeError):
    """The drill could not prove the backup restorable; the message says which step and why."""


class ChecksumMismatch(DrillError):
    pass


@dataclass(frozen=True)
class FetchResult:
    sha256: str
    size: int
    dump_bytes: int
    seconds: float


class _HashingReader(io.RawIOBase):
    def __init__(self, body: Any):
        super().__init__()
        self._body, self._hash, self.size = body, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        n = len(data)
        b[:n] = data
        self._hash.update(data)
        self.size += n
        return n

    def drain_hashing(self) -> None:
        while True:
            data = self._body.read(CHUNK)
            if not data:
                return
            self._hash.update(data)
            self.size += len(data)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def check_jobs(jobs: int) -> int:
    """The runbook's ``jobs`` (parallel pg_restore jobs); BadParameter (naming it) below 1."""
    if jobs < 1:
        raise BadParameter("jobs", jobs, "pg_restore needs at least one job", "give 1 or more, e.g. -p jobs=2")
    return jobs


SCRATCH_PARAM = "scratch_database_url_ref"
#: the only environment whose drill may put its scratch database next to the database it backs up
SANDBOX = "sandbox"


def server_identity(server: Postgres) -> tuple[str, int]:
    """(host, port) of a server, lower-cased: two DSNs with the same pair reach the same server."""
    host, _, rest = server.describe().partition(":")
    return host.lower(), int(rest.split("/", 1)[0] or 5432)


def scratch_server(env: Environment, scratch_ref: str) -> Postgres:
    """The server the drill restores onto: ``scratch_ref``'s, checked by :func:`check_scratch_server`.

    Outside the sandbox an empty ``scratch_ref`` is refused before ``database_url`` is even resolved."""
    scratch_ref = scratch_ref.strip()
    scratch = Postgres.from_environment(env, scratch_ref) if scratch_ref else None
    if scratch is None and env.environment != SANDBOX:
        check_scratch_server(env.environment, scratch_ref, None, None)
    database = Postgres.from_environment(env)
    check_scratch_server(env.environment, scratch_ref, database, scratch)
    return scratch or database


def check_scratch_server(
    environment: str, scratch_ref: str, database: Postgres | None, scratch: Postgres | None
) -> None:
    """Refuse a drill that would restore onto the production server (BadParameter naming ``scratch_ref``).

    Outside the sandbox the drill needs an explicit scratch server (``scratch_ref`` given) that is not
    the server of ``database_url``: a drill creates and drops databases, and a weekly job must never do
    that next to the data it protects. In the sandbox (one server, no production data) anything goes;
    an empty ``scratch_ref`` means the twin's server.
    """
    if environment == SANDBOX:  # the twin has one server, and it holds no production data
        return
    fix = (
        f"give -p {SCRATCH_PARAM}=env:NAME (or file:PATH) naming a scratch PostgreSQL server that is not "
        "the server of the inventory's database_url (e.g. a small instance kept for drills)"
    )
    if scratch is None:
        raise BadParameter(
            SCRATCH_PARAM,
            scratch_ref,
            f"outside the sandbox the drill never restores onto the production server by default ({environment})",
            fix,
        )
    if database is not None and server_identity(scratch) == server_identity(database):
        raise BadParameter(
            SCRATCH_PARAM,
            scratch_ref,
            f"it reaches the server of database_url ({scratch.describe().rsplit('/', 1)[0]}): the drill would "
            "create and drop databases next to the production data",
            fix,
        )


def resolve_backup_key(s3: S3, bucket: str, prefix: str, key: str) -> str | None:
    """Check a given ``backup_key`` names a stored backup (by listing: the drill credential may list).

    Empty means "the latest" (None: resolved by :func:`run_drill`). An unknown key ("no such backup", with
    the newest keys and how to list them), or the key of a sidecar rather than of a backup, is a
    BadParameter naming the parameter and how to find a valid key, raised before anything is fetched.
    """
    key = key.strip()
    if not key:
        return None
    listing = f"aws s3 ls s3://{bucket}/{prefix} --recursive"
    exists = any(o.key == key for o in s3.list_objects(bucket, key))
    if exists and key.endswith(BACKUP_SUFFIX):
        return key
    if exists:  # e.g. the sidecar, or a canary
        raise BadParameter(
            "backup_key",
            key,
            f"not a backup object (backup keys end in {BACKUP_SUFFIX})",
            f"give the key of the backup itself, not of its sidecar; list them with `{listing}`, "
            "or leave backup_key empty for the latest",
        )
    newest = sorted((o.key for o in s3.list_objects(bucket, prefix) if o.key.endswith(BACKUP_SUFFIX)), reverse=True)
    shown = f" (newest: {', '.join(newest[:3])})" if newest else ""
    shape = "" if key.endswith(BACKUP_SUFFIX) else f" (backup keys end in {BACKUP_SUFFIX})"
    raise BadParameter(
        "backup_key",
        key,
        f"no such backup in s3://{bucket}/{shape}",
        f"list them with `{listing}`{shown}, or leave backup_key empty for the latest",
    )


def parse_identity(identity: str) -> x25519.Identity:
    try:
        return x25519.Identity.from_str(identity.strip())
    except Exception as e:
        raise DrillError(f"the backup identity is not a valid age X25519 identity ({type(e).__name__})") from None


def load_manifest(s3: S3, bucket: str, key: str) -> dict[str, Any]:
    m = s3.get_json(bucket, manifest_key(key))
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise DrillError(f"s3://{bucket}/{manifest_key(key)} is not a {MANIFEST_FORMAT} sidecar")
    return m


def fetch_backup(s3: S3, bucket: str, obj: dict[str, Any], identity: str, dest: Path) -> FetchResult:
    """Stream the object into ``dest`` as a plain dump; raise ChecksumMismatch if it is not what the sidecar says."""
    ident = parse_identity(identity)
    t0 = time.perf_counter()
    body = s3.open(bucket, obj["key"], obj.get("version_id"))
    reader = _HashingReader(body)
    try:
        with dest.open("wb") as out:
            plain = zstandard.ZstdDecompressor().stream_writer(out, closefd=False)
            try:
                pyrage.decrypt_io(reader, plain, [ident])
                plain.flush()
                decrypt_error: Exception | None = None
            except (OSError, pyrage.DecryptError, zstandard.ZstdError) as e:
                decrypt_error = e
                reader.drain_hashing()  # finish the hash: a changed object is reported as such
            dump_bytes = out.tell()
    finally:
        body.close()
    if reader.hexdigest != obj["sha256"] or reader.size != obj["size"]:
        dest.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"s3://{bucket}/{obj['key']} (version {obj.get('version_id')}): stored bytes have sha256 "
            f"{reader.hexdigest[:16]}… and size {reader.size}, the sidecar says {obj['sha256'][:16]}… and "
            f"{obj['size']}: the backup is corrupt or was replaced"
        )
    if decrypt_error is not None:
        dest.unlink(missing_ok=True)
        raise DrillError(
            f"checksum matches but decryption failed ({decrypt_error}): wrong identity for this backup's recipient?"
        )
    return FetchResult(reader.hexdigest, reader.size, dump_bytes, time.perf_counter() - t0)


def pg_restore(pg: Postgres, database: str, dump: Path, *, jobs: int = 2, timeout: float | None = None) -> float:
    """``pg_restore -j jobs`` of ``dump`` into the existing ``database``; returns seconds."""
    target = pg.for_database(database)
    argv = [
        pg.tool("pg_restore"),
        f"--jobs={jobs}",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--no-password",
        f"--dbname={target.conninfo(password=False)}",
        str(dump),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=pg.tool_env(), timeout=timeout, check=False)
    if proc.returncode != 0:
        raise DrillError(
            f"pg_restore exited with {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:].strip()}"
        )
    return time.perf_counter() - t0


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[dict[str, Any]]:
    """One row per table whose count differs (or that is missing on either side)."""
    return [
        {"table": t, "expected": expected.get(t), "restored": actual.get(t)}
        for t in sorted(set(expected) | set(actual))
        if expected.get(t) != actual.get(t)
    ]


def compare_schema(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for t in sorted(set(expected) | set(actual)):
        e, a = expected.get(t), actual.get(t)
        if e is None:
            out.append(f"{t}: present in the restore, absent from the sidecar")
        elif a is None:
            out.append(f"{t}: missing from the restore")
        elif e != a:
            missing, extra = sorted(set(e) - set(a)), sorted(set(a) - set(e))
            out.append(
                f"{t}: missing {missing or '-'}, unexpected {extra or '-'}"
                + ("" if missing or extra else ", column order differs")
            )
    return out


def scratch_name(now: datetime) -> str:
    return f"drill_{now:%Y%m%d%H%M%S}_{_secrets.token_hex(3)}"


@dataclass
class DrillResult:
    bucket: str
    key: str
    version_id: str | None
    sha256: str = ""
    size: int = 0
    dump_bytes: int = 0
    scratch_database: str = ""
    backup_finished_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    rto_seconds: float | None = None  #: drill start → scratch database restored and answering
    rpo_seconds: float | None = None  #: age of the backup at drill start
    timings: dict[str, float] = field(default_factory=dict)
    tables: int = 0
    rows: int = 0
    count_mismatches: list[dict[str, Any]] = field(default_factory=list)
    schema_mismatches: list[str] = field(default_factory=list)
    scratch_dropped: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.count_mismatches and not self.schema_mismatches

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def run_drill(
    s3: S3,
    pg: Postgres,
    *,
    bucket: str,
    prefix: str,
    identity: str,
    key: str | None = None,
    jobs: int = 2,
    workdir: Path | None = None,
    clock: Callable[[], datetime] = utcnow,
    restore_timeout: float | None = None,
) -> DrillResult:
    """Run the whole drill. Never raises for a failed step: the result carries ``error`` (and ``ok``)."""
    started = clock()
    t0 = time.perf_counter()
    if key is None:
        latest = latest_backup(s3, bucket, prefix)
        if latest is None:
            return DrillResult(
                bucket,
                "",
                None,
                started_at=started.isoformat(),
                finished_at=clock().isoformat(),
                error=f"no backup under s3://{bucket}/{prefix}",
            )
        key = latest.key
    result = DrillResult(bucket, key, None, started_at=started.isoformat())
    scratch = ""
    try:
        manifest = load_manifest(s3, bucket, key)
        obj = manifest["object"]
        result.version_id = obj.get("version_id")
        result.backup_finished_at = manifest["finished_at"]
        result.rpo_seconds = round((started - datetime.fromisoformat(manifest["finished_at"])).total_seconds(), 3)
        with tempfile.TemporaryDirectory(prefix="drill-", dir=workdir) as tmp:
            dump = Path(tmp) / "backup.dump"
            fetched = fetch_backup(s3, bucket, obj, identity, dump)
            result.sha256, result.size, result.dump_bytes = fetched.sha256, fetched.size, fetched.dump_bytes
            result.timings["fetch_verify_decrypt"] = round(fetched.seconds, 3)
            scratch = scratch_name(started.astimezone(UTC))
            pg.create_database(scratch)
            result.scratch_database = scratch
            result.timings["restore"] = round(pg_restore(pg, scratch, dump, jobs=jobs, timeout=restore_timeout), 3)
        t1 = time.perf_counter()
        with pg.for_database(scratch).connect() as conn:
            conn.execute("SELECT 1")
            result.rto_seconds = round(time.perf_counter() - t0, 3)
            counts, schema = row_counts(conn), schema_signature(conn)
        result.timings["compare"] = round(time.perf_counter() - t1, 3)
        result.tables, result.rows = len(counts), sum(counts.values())
        result.count_mismatches = compare_counts(manifest["database"]["row_counts"], counts)
        result.schema_mismatches = compare_schema(manifest["database"]["schema"], schema)
    except Exception as e:  # recorded, and the notebook fails on it
        result.error = f"{type(e).__name__}: {e}"
    finally:
        if scratch:
            try:
                pg.drop_database(scratch)
                result.scratch_dropped = not pg.database_exists(scratch)
            except Exception as e:
                result.error = (result.error + "; " if result.error else "") + f"dropping {scratch} failed: {e}"
        result.finished_at = clock().isoformat()
        result.timings["total"] = round(time.perf_counter() - t0, 3)
    return result
