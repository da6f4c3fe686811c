"""The nightly backup: ``pg_dump`` → zstd → age → S3 multipart upload, streaming end to end.

One pass, bounded memory whatever the database size:

    pg_dump -Fc -Z0 (stdout pipe) → zstandard.stream_reader → pyrage.encrypt_io → MultipartWriter

``pg_dump`` runs in a snapshot exported by a REPEATABLE READ transaction in which the row counts and
the schema signature are read, so the sidecar describes exactly what the dump contains. The dump is
encrypted to the inventory's age *recipient* (a public key): writing a backup never needs the identity
that reads it. The dump is taken without pg_dump's own compression (``-Z0``): zstd compresses once.

Objects (named by :mod:`runbooks.state.backups`): ``<prefix>YYYY/MM/DD/<database>-<YYYYmmddTHHMMSSZ>.dump.zst.age``
and, next to it, the sidecar ``<same key>.manifest.json`` with the object's version id, sha256 of the stored
bytes, size, row counts per table, schema signature, server version, start and end.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any, cast

import pyrage
import zstandard
from pyrage import x25519

from runbooks.errors import BadParameter
from runbooks.plan import utcnow
from runbooks.providers.postgres import Postgres, row_counts, schema_signature
from runbooks.providers.s3 import DEFAULT_PART_SIZE, MIN_PART_SIZE, S3
from runbooks.state.backups import MANIFEST_FORMAT, backup_key, manifest_key

READ_SIZE = 1 << 17
MIB = 1 << 20
MIN_PART_MIB = MIN_PART_SIZE // MIB  #: S3's minimum for every part but the last
MAX_PART_MIB = 512  #: memory stays at part_size * (max_inflight + 1): keep it modest
MAX_ZSTD_LEVEL = zstandard.MAX_COMPRESSION_LEVEL


class BackupError(RuntimeError):
    """The backup could not be taken; nothing was stored (the multipart upload was aborted)."""


def parse_recipient(recipient: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(recipient.strip())
    except Exception as e:  # pyrage raises its own RecipientError / ValueError
        raise BackupError(f"backup.recipient is not a valid age X25519 recipient ({type(e).__name__})") from e


def part_size_bytes(part_size_mib: int) -> int:
    """The runbook's ``part_size_mib`` in bytes; BadParameter (naming it) outside [5, 512] MiB."""
    if not MIN_PART_MIB <= part_size_mib <= MAX_PART_MIB:
        problem = (
            f"below S3's minimum part size of {MIN_PART_MIB} MiB"
            if part_size_mib < MIN_PART_MIB
            else f"above {MAX_PART_MIB} MiB (peak memory is about three parts)"
        )
        raise BadParameter(
            "part_size_mib",
            part_size_mib,
            problem,
            f"give a whole number of MiB from {MIN_PART_MIB} to {MAX_PART_MIB}, e.g. -p part_size_mib=8",
        )
    return part_size_mib * MIB


def check_zstd_level(zstd_level: int) -> int:
    """The runbook's ``zstd_level``; BadParameter (naming it) outside zstd's levels 1..22."""
    if not 1 <= zstd_level <= MAX_ZSTD_LEVEL:
        raise BadParameter(
            "zstd_level",
            zstd_level,
            f"not a zstd compression level (1 to {MAX_ZSTD_LEVEL})",
            "give 1 (fast) to 19 (small), e.g. -p zstd_level=3",
        )
    return zstd_level


@dataclass
class BackupResult:
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int  #: bytes stored (compressed and encrypted)
    dump_bytes: int  #: bytes pg_dump produced
    parts: int
    database: str
    server_version: str
    row_counts: dict[str, int]
    schema: dict[str, list[str]]
    started_at: datetime
    finished_at: datetime
    manifest_key: str = ""
    manifest_version_id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "object": {
                "bucket": self.bucket,
                "key": self.key,
                "version_id": self.version_id,
                "sha256": self.sha256,
                "size": self.size,
                "parts": self.parts,
            },
            "dump": {
                "format": "pg_dump custom",
                "compression": "zstd",
                "encryption": "age X25519",
                "dump_bytes": self.dump_bytes,
                **self.settings,
            },
            "database": {
                "name": self.database,
                "server_version": self.server_version,
                "row_counts": self.row_counts,
                "schema": self.schema,
            },
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }

    def summary(self) -> dict[str, Any]:
        """What the run record shows: everything but the (long) schema signature."""
        d = asdict(self)
        d.pop("schema")
        d["tables"] = len(self.row_counts)
        d["rows"] = sum(self.row_counts.values())
        d["seconds"] = round(self.seconds, 3)
        d["throughput_mib_s"] = round(self.dump_bytes / 2**20 / max(self.seconds, 1e-6), 2)
        d["started_at"], d["finished_at"] = self.started_at.isoformat(), self.finished_at.isoformat()
        return d


class _CountingReader(io.RawIOBase):
    """Pass-through reader that counts bytes (the size of the plain dump)."""

    def __init__(self, raw: Any):
        super().__init__()
        self._raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        self.count += n or 0
        return n or 0


def _stderr_tail(f: Any, limit: int = 2000) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")[-limit:].strip()


def run_backup(
    pg: Postgres,
    s3: S3,
    *,
    bucket: str,
    prefix: str,
    recipient: str,
    part_size: int = DEFAULT_PART_SIZE,
    max_inflight: int = 2,
    level: int = 3,
    clock: Callable[[], datetime] = utcnow,
    dump_timeout: float | None = None,
) -> BackupResult:
    """Take one backup and its sidecar; raise BackupError (and store nothing) on any failure."""
    rcpt = parse_recipient(recipient)
    started = clock()
    key = backup_key(prefix, pg.dbname, started)
    pg_dump = pg.tool("pg_dump")
    with pg.connect(autocommit=False) as conn, tempfile.TemporaryFile() as err:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]  # one-row query: fetchone() is never None here
        counts, schema = row_counts(conn), schema_signature(conn)
        server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]  # one-row query: fetchone() is never None here
        argv = [
            pg_dump,
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            "--no-password",
            f"--dbname={pg.conninfo(password=False)}",
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=pg.tool_env())
        assert proc.stdout is not None
        try:
            dump = _CountingReader(proc.stdout)
            with s3.multipart_writer(
                bucket,
                key,
                part_size=part_size,
                max_inflight=max_inflight,
                metadata={"manifest": manifest_key(key).rsplit("/", 1)[-1]},
            ) as sink:
                compressed = zstandard.ZstdCompressor(level=level).stream_reader(
                    cast(IO[bytes], dump), read_size=READ_SIZE
                )
                try:
                    pyrage.encrypt_io(compressed, sink, [rcpt])
                except OSError as e:
                    raise BackupError(f"encryption stream failed: {e}") from e
                rc = proc.wait(timeout=dump_timeout)
                if rc != 0:  # raising inside the block aborts the upload: a failed dump is never stored
                    raise BackupError(f"pg_dump exited with {rc}: {_stderr_tail(err)}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        conn.rollback()
    upload = sink.result
    assert upload is not None
    result = BackupResult(
        bucket=bucket,
        key=key,
        version_id=upload.version_id,
        sha256=upload.sha256,
        size=upload.size,
        dump_bytes=dump.count,
        parts=upload.parts,
        database=pg.dbname,
        server_version=server_version,
        row_counts=counts,
        schema=schema,
        started_at=started,
        finished_at=clock(),
        settings={"zstd_level": level, "part_size": part_size, "recipient": str(rcpt)},
    )
    result.manifest_key = manifest_key(key)
    result.manifest_version_id = s3.put_json(bucket, result.manifest_key, result.manifest())
    return result
