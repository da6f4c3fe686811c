"""Restore drill pieces: fetch + verify + decrypt (moto's in-process S3), comparisons with the sidecar."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
import zstandard
from moto import mock_aws
from pyrage import x25519

from runbooks.errors import BadParameter
from runbooks.procedures import restore
from runbooks.providers.s3 import S3

BUCKET = "spectral-drill-test"


@pytest.fixture
def s3() -> Iterator[S3]:
    with mock_aws():
        p = S3(access_key_id="test", secret_access_key="test", region="us-east-1")
        p.client.create_bucket(Bucket=BUCKET)
        p.client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield p


@pytest.fixture
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


def _store(s3: S3, identity: x25519.Identity, plain: bytes, key: str = "nightly/x.dump.zst.age") -> dict[str, Any]:
    sealed = io.BytesIO()
    pyrage.encrypt_io(io.BytesIO(zstandard.ZstdCompressor().compress(plain)), sealed, [identity.to_public()])
    data = sealed.getvalue()
    vid = s3.put_bytes(BUCKET, key, data)
    return {"key": key, "version_id": vid, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_fetch_verifies_decrypts_and_decompresses(s3: S3, identity: x25519.Identity, tmp_path: Path) -> None:
    plain = os.urandom(300_000) + b"PGDMP" * 1000
    obj = _store(s3, identity, plain)
    got = restore.fetch_backup(s3, BUCKET, obj, str(identity), tmp_path / "d")
    assert (tmp_path / "d").read_bytes() == plain
    assert got.sha256 == obj["sha256"] and got.size == obj["size"] and got.dump_bytes == len(plain)


def test_fetch_pins_the_sidecar_version(s3: S3, identity: x25519.Identity, tmp_path: Path) -> None:
    obj = _store(s3, identity, b"first")
    _store(s3, identity, b"second, a later overwrite")  # newer version under the same key
    restore.fetch_backup(s3, BUCKET, obj, str(identity), tmp_path / "d")
    assert (tmp_path / "d").read_bytes() == b"first"


def test_changed_bytes_are_a_checksum_mismatch_and_leave_no_file(
    s3: S3, identity: x25519.Identity, tmp_path: Path
) -> None:
    obj = _store(s3, identity, os.urandom(50_000))
    body = bytearray(s3.client.get_object(Bucket=BUCKET, Key=obj["key"])["Body"].read())
    body[len(body) // 2] ^= 0xFF
    obj["version_id"] = s3.put_bytes(BUCKET, obj["key"], bytes(body))  # sidecar keeps the original sha256
    with pytest.raises(restore.ChecksumMismatch, match="corrupt or was replaced"):
        restore.fetch_backup(s3, BUCKET, obj, str(identity), tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_wrong_identity_is_a_decryption_error_not_a_checksum_error(
    s3: S3, identity: x25519.Identity, tmp_path: Path
) -> None:
    obj = _store(s3, identity, b"data")
    with pytest.raises(restore.DrillError, match="decryption failed") as e:
        restore.fetch_backup(s3, BUCKET, obj, str(x25519.Identity.generate()), tmp_path / "d")
    assert not isinstance(e.value, restore.ChecksumMismatch)


def test_malformed_identity_is_refused_without_echoing_it(s3: S3, tmp_path: Path) -> None:
    with pytest.raises(restore.DrillError) as e:
        restore.fetch_backup(s3, BUCKET, {"key": "k", "sha256": "", "size": 0}, "AGE-SECRET-KEY-NOPE", tmp_path / "d")
    assert "AGE-SECRET-KEY" not in str(e.value)


def test_compare_counts() -> None:
    assert restore.compare_counts({"public.a": 3}, {"public.a": 3}) == []
    assert restore.compare_counts({"public.a": 3, "public.b": 1}, {"public.a": 2, "public.c": 0}) == [
        {"table": "public.a", "expected": 3, "restored": 2},
        {"table": "public.b", "expected": 1, "restored": None},
        {"table": "public.c", "expected": None, "restored": 0},
    ]


def test_compare_schema() -> None:
    s = {"public.a": ["id bigint not null", "name text", "index a_pkey"]}
    assert restore.compare_schema(s, {"public.a": list(s["public.a"])}) == []
    diff = restore.compare_schema(s, {"public.a": ["id bigint not null", "name varchar"], "public.z": ["x int"]})
    assert diff[0].startswith("public.a: missing ['index a_pkey', 'name text'], unexpected ['name varchar']")
    assert diff[1] == "public.z: present in the restore, absent from the sidecar"
    assert restore.compare_schema(s, {}) == ["public.a: missing from the restore"]
    assert "column order differs" in restore.compare_schema(s, {"public.a": list(reversed(s["public.a"]))})[0]


def test_scratch_names_are_unique_and_valid_identifiers() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, tzinfo=UTC)
    a, b = restore.scratch_name(now), restore.scratch_name(now)
    assert a != b and a.startswith("drill_20261127") and len(a) < 63 and a.replace("_", "").isalnum()


def test_jobs_below_one_is_refused() -> None:
    assert restore.check_jobs(1) == 1 and restore.check_jobs(4) == 4
    for jobs in (0, -2):
        with pytest.raises(BadParameter, match="at least one job") as e:
            restore.check_jobs(jobs)
        assert e.value.name == "jobs" and str(e.value).startswith("jobs (value not shown): ")


def test_backup_key_empty_means_latest_and_a_stored_key_is_accepted(s3: S3, identity: x25519.Identity) -> None:
    obj = _store(s3, identity, b"x", key="nightly/2026/11/27/app-20261127T031700Z.dump.zst.age")
    assert restore.resolve_backup_key(s3, BUCKET, "nightly/", "") is None
    assert restore.resolve_backup_key(s3, BUCKET, "nightly/", "  ") is None
    assert restore.resolve_backup_key(s3, BUCKET, "nightly/", obj["key"]) == obj["key"]


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("nightly/nope", "no such backup in s3://spectral-drill-test/ .backup keys end in"),
        ("nightly/2026/11/27/app-20261127T031700Z.dump.zst.age.manifest.json", "not a backup object"),  # sidecar
        ("nightly/2026/11/26/app-20261126T031700Z.dump.zst.age", "no such backup"),
        ("nightly/2026/11/27/app-20261127T031700Z.dump.zst", "no such backup"),  # a prefix of a real key
        ("nightly/2026/11/27/app-20261127T0317", "no such backup"),
    ],
)
def test_unknown_backup_key_is_refused_with_how_to_list_them(
    s3: S3, identity: x25519.Identity, key: str, needle: str
) -> None:
    stored = _store(s3, identity, b"x", key="nightly/2026/11/27/app-20261127T031700Z.dump.zst.age")["key"]
    s3.put_json(BUCKET, stored + ".manifest.json", {"format": "spectral-backup/1"})
    with pytest.raises(BadParameter, match=needle) as e:
        restore.resolve_backup_key(s3, BUCKET, "nightly/", key)
    assert e.value.name == "backup_key" and e.value.value == key
    assert f"aws s3 ls s3://{BUCKET}/nightly/ --recursive" in e.value.fix
    assert "leave backup_key empty for the latest" in e.value.fix
    if needle.startswith("no such backup"):
        assert stored in e.value.fix  # the newest backups are named, so the operator can pick one


def test_unknown_key_that_prefixes_a_backup_is_not_taken_for_it(s3: S3, identity: x25519.Identity) -> None:
    _store(s3, identity, b"x", key="nightly/a-1.dump.zst.age.old.dump.zst.age")
    with pytest.raises(BadParameter, match="no such backup"):
        restore.resolve_backup_key(s3, BUCKET, "nightly/", "nightly/a-1.dump.zst.age")


# -- the scratch server (issue 14, item 4): never the production server by default ----------------------
PROD_DSN = "postgresql://drill:pw-" + "x" * 8 + "@db.spectralprod.example:5432/postgres"


def test_production_drill_without_a_scratch_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks.inventory import load

    monkeypatch.setenv("SPECTRAL_DATABASE_URL", PROD_DSN)
    with pytest.raises(BadParameter, match="never restores onto the production server") as e:
        restore.scratch_server(load("production"), "")
    assert e.value.name == "scratch_database_url_ref" and "-p scratch_database_url_ref=env:" in str(e.value)


def test_production_drill_onto_the_database_url_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks.inventory import load

    monkeypatch.setenv("SPECTRAL_DATABASE_URL", PROD_DSN)
    # same host and port, another database and user: still the production server
    monkeypatch.setenv("SCRATCH_DSN", "postgresql://other:pw@DB.spectralprod.example/scratch")
    with pytest.raises(BadParameter, match="reaches the server of database_url") as e:
        restore.scratch_server(load("production"), "env:SCRATCH_DSN")
    assert "pw" not in str(e.value).replace("-p", "")


def test_production_drill_onto_another_server_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks.inventory import load

    monkeypatch.setenv("SPECTRAL_DATABASE_URL", PROD_DSN)
    monkeypatch.setenv("SCRATCH_DSN", "postgresql://drill:pw@drill-scratch.example:5432/postgres")
    server = restore.scratch_server(load("production"), "env:SCRATCH_DSN")
    assert server.describe() == "drill-scratch.example:5432/postgres"


def test_sandbox_drill_defaults_to_the_twin_server() -> None:
    db = restore.Postgres("postgresql://u:p@127.0.0.1:6543/spectral")
    restore.check_scratch_server("sandbox", "", db, None)  # no error: the twin's one server
    with pytest.raises(BadParameter, match="reaches the server of database_url"):
        restore.check_scratch_server("staging", "env:X", db, restore.Postgres("postgresql://u:p@127.0.0.1:6543/o"))
