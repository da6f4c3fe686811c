"""The nightly backup pipeline against the twin's real Postgres and IAM-enforced S3 (session ``sandbox``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runbooks.procedures import backup, restore
from runbooks.providers.base import ProviderError
from runbooks.providers.postgres import Postgres, user_tables
from runbooks.providers.s3 import MIN_PART_SIZE, S3
from runbooks.sandbox.fixture import Sandbox
from runbooks.state import backups

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def twin(sandbox: Sandbox) -> dict[str, Any]:
    env = sandbox.inventory()
    return {
        "env": env,
        "bucket": env.backup_bucket.name,
        "recipient": env.backup.recipient,
        "pg": Postgres(sandbox.database_url),
        "writer": S3.from_environment(env, "s3_backup_writer"),
        "drill": S3.from_environment(env, "s3_drill_reader"),
        "admin": sandbox.s3_client("admin"),
        "identity": sandbox.secret("backup_age_identity"),
    }


@pytest.fixture(scope="module")
def taken(twin: dict[str, Any]) -> backup.BackupResult:
    return backup.run_backup(
        twin["pg"], twin["writer"], bucket=twin["bucket"], prefix="test-backup/", recipient=twin["recipient"]
    )


def _digests(pg: Postgres) -> dict[str, str]:
    with pg.connect() as conn:
        out = {}
        for schema, table in user_tables(conn):
            q = sql.SQL("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {}.{} t").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            out[f"{schema}.{table}"] = conn.execute(q).fetchone()[0]  # type: ignore[index]
        return out


def _stored(twin: dict[str, Any], key: str, version: str | None) -> bytes:
    return bytes(twin["admin"].get_object(Bucket=twin["bucket"], Key=key, VersionId=version)["Body"].read())


def test_sidecar_describes_exactly_the_stored_object(twin: dict[str, Any], taken: backup.BackupResult) -> None:
    data = _stored(twin, taken.key, taken.version_id)
    m = twin["drill"].get_json(twin["bucket"], taken.manifest_key)
    assert m["format"] == backups.MANIFEST_FORMAT
    assert m["object"] == {
        "bucket": twin["bucket"],
        "key": taken.key,
        "version_id": taken.version_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "parts": taken.parts,
    }
    with twin["pg"].connect() as conn:
        from runbooks.providers.postgres import row_counts

        live = row_counts(conn)
    assert m["database"]["row_counts"] == live and sum(live.values()) > 100
    assert m["database"]["server_version"].split(".")[0] == str(twin["pg"].server_major())
    assert m["started_at"] < m["finished_at"]
    assert taken.key.startswith("test-backup/") and taken.key.endswith(backups.BACKUP_SUFFIX)


def test_stored_backup_contains_no_plaintext(twin: dict[str, Any], taken: backup.BackupResult, tmp_path: Path) -> None:
    with twin["pg"].connect() as conn:
        seeded = [r[0] for r in conn.execute("SELECT slug FROM tenants ORDER BY id LIMIT 5")]
        seeded += [r[0] for r in conn.execute("SELECT label FROM restore_markers LIMIT 1")]
    values = [v.encode() for v in seeded if v and len(v) >= 4]
    assert values
    stored = _stored(twin, taken.key, taken.version_id)
    assert all(v not in stored for v in values)
    assert b"PGDMP" not in stored and b"CREATE TABLE" not in stored
    # control: the same values are in the decrypted dump, so the search above would have found them
    restore.fetch_backup(
        twin["drill"],
        twin["bucket"],
        json.loads(json.dumps(taken.manifest()["object"])),
        twin["identity"],
        tmp_path / "plain.dump",
    )
    plain = (tmp_path / "plain.dump").read_bytes()
    assert plain.startswith(b"PGDMP") and all(v in plain for v in values)


def test_round_trip_restores_identical_content(
    twin: dict[str, Any], taken: backup.BackupResult, tmp_path: Path
) -> None:
    pg: Postgres = twin["pg"]
    source = _digests(pg)  # the twin's data does not change during this module
    restore.fetch_backup(
        twin["drill"], twin["bucket"], taken.manifest()["object"], twin["identity"], tmp_path / "d.dump"
    )
    scratch = "roundtrip_" + os.urandom(3).hex()
    pg.create_database(scratch)
    try:
        restore.pg_restore(pg, scratch, tmp_path / "d.dump", jobs=2)
        assert _digests(pg.for_database(scratch)) == source
    finally:
        pg.drop_database(scratch)
    assert not pg.database_exists(scratch)


def test_drill_of_the_backup_matches_the_sidecar(twin: dict[str, Any], taken: backup.BackupResult) -> None:
    r = restore.run_drill(
        twin["drill"],
        twin["pg"],
        bucket=twin["bucket"],
        prefix="test-backup/",
        identity=twin["identity"],
        key=taken.key,
    )
    assert r.ok, r.error or (r.count_mismatches, r.schema_mismatches)
    assert r.tables == len(taken.row_counts) and r.rows == sum(taken.row_counts.values())
    assert r.scratch_dropped and r.rto_seconds is not None and r.rpo_seconds is not None and r.rpo_seconds >= 0


def test_latest_backup_is_the_newest_key(twin: dict[str, Any], taken: backup.BackupResult) -> None:
    latest = backups.latest_backup(twin["drill"], twin["bucket"], "test-backup/")
    assert latest is not None and latest.key == taken.key


def test_a_failing_dump_stores_nothing(twin: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_dump dies after having streamed more than a part: the multipart upload is aborted."""
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text(
        textwrap.dedent("""\
        #!/bin/sh
        if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi
        head -c 12000000 /dev/urandom
        echo "pg_dump: error: connection lost" >&2
        exit 1
        """)
    )
    fake.chmod(0o755)
    monkeypatch.setenv("RUNBOOKS_PG_BIN", str(fake.parent))
    with pytest.raises(backup.BackupError, match="pg_dump exited with 1: pg_dump: error: connection lost"):
        backup.run_backup(
            twin["pg"],
            twin["writer"],
            bucket=twin["bucket"],
            prefix="test-failed/",
            recipient=twin["recipient"],
            part_size=MIN_PART_SIZE,
        )
    assert "Contents" not in twin["admin"].list_objects_v2(Bucket=twin["bucket"], Prefix="test-failed/")


def test_bad_recipient_is_refused_before_anything_runs(twin: dict[str, Any]) -> None:
    with pytest.raises(backup.BackupError, match="not a valid age X25519 recipient"):
        backup.run_backup(
            twin["pg"], twin["writer"], bucket=twin["bucket"], prefix="test-bad/", recipient="age1notarecipient"
        )
    assert "Contents" not in twin["admin"].list_objects_v2(Bucket=twin["bucket"], Prefix="test-bad/")


def test_wrong_credential_is_refused_and_aborted(twin: dict[str, Any], sandbox: Sandbox) -> None:
    runtime = S3.from_environment(twin["env"], "s3_runtime")
    with pytest.raises(ProviderError, match="AccessDenied"):
        backup.run_backup(
            twin["pg"], runtime, bucket=twin["bucket"], prefix="test-runtime/", recipient=twin["recipient"]
        )


# -- memory: flat whatever the database size ------------------------------------------------------------

_MEASURE = textwrap.dedent("""\
    import json, os, threading, time
    import psutil
    from runbooks.procedures.backup import run_backup
    from runbooks.providers.postgres import Postgres
    from runbooks.providers.s3 import S3
    s3 = S3(access_key_id=os.environ["T_KEY"], secret_access_key=os.environ["T_SECRET"],
            endpoint_url=os.environ["T_ENDPOINT"], region=os.environ["T_REGION"])
    me = psutil.Process()
    before, peak, done = me.memory_info().rss, [0], threading.Event()
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.01)
    t = threading.Thread(target=sample); t.start()
    r = run_backup(Postgres(os.environ["T_DSN"]), s3, bucket=os.environ["T_BUCKET"], prefix="test-memory/",
                   recipient=os.environ["T_RECIPIENT"], part_size=5 * 2**20)
    done.set(); t.join()
    print(json.dumps({"growth_kib": (peak[0] - before) // 1024, "dump_bytes": r.dump_bytes, "size": r.size}))
    """)


@pytest.fixture(scope="module")
def sized_databases(twin: dict[str, Any]) -> Iterator[dict[str, Postgres]]:
    pg: Postgres = twin["pg"]
    made: dict[str, Postgres] = {}
    for name, rows in (("mem_small", 300_000), ("mem_large", 1_200_000)):
        db = f"{name}_{os.urandom(2).hex()}"
        pg.create_database(db)
        made[name] = pg.for_database(db)
        with psycopg.connect(made[name].conninfo(), autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE blob AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, "
                f"md5((g * 13)::text) AS b FROM generate_series(1, {rows}) g"
            )
    yield made
    for p in made.values():
        pg.drop_database(p.dbname)


def _measure(twin: dict[str, Any], sandbox: Sandbox, pg: Postgres) -> dict[str, int]:
    env = twin["env"]
    child_env = {
        **os.environ,
        "T_KEY": sandbox.secret("backup_aws_access_key_id"),
        "T_SECRET": sandbox.secret("backup_aws_secret_access_key"),
        "T_ENDPOINT": str(env.endpoints.s3),
        "T_REGION": env.endpoints.s3_region,
        "T_DSN": pg.conninfo(),
        "T_BUCKET": twin["bucket"],
        "T_RECIPIENT": twin["recipient"],
    }
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE], env=child_env, capture_output=True, text=True, timeout=240, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_database_size(
    twin: dict[str, Any], sandbox: Sandbox, sized_databases: dict[str, Postgres]
) -> None:
    small = _measure(twin, sandbox, sized_databases["mem_small"])
    large = _measure(twin, sandbox, sized_databases["mem_large"])
    assert large["dump_bytes"] >= 3.5 * small["dump_bytes"]
    # a buffering pipeline would grow by about the extra stored size (tens of MiB); ours by noise only
    extra_kib = (large["size"] - small["size"]) // 1024
    assert extra_kib > 20_000
    assert large["growth_kib"] - small["growth_kib"] < 4 * 1024, (small, large)
    assert large["growth_kib"] < 64 * 1024  # parts in flight and buffers: about 3 parts of 5 MiB


def test_drill_drops_the_scratch_database_when_the_restore_fails(
    twin: dict[str, Any], taken: backup.BackupResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "pg_restore"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "pg_restore (PostgreSQL) 99.0"; exit 0; fi\n'
        'echo "pg_restore: error: could not execute query: disk full" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("RUNBOOKS_PG_BIN", str(fake.parent))
    r = restore.run_drill(
        twin["drill"],
        twin["pg"],
        bucket=twin["bucket"],
        prefix="test-backup/",
        identity=twin["identity"],
        key=taken.key,
    )
    assert not r.ok and "pg_restore exited with 1" in r.error and "disk full" in r.error
    assert r.scratch_database and r.scratch_dropped
    assert not twin["pg"].database_exists(r.scratch_database)
