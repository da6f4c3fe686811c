"""verify-backup-posture checks: the pass and fail path of every check.

S3 is moto's in-process server; the three credentials are the same moto client seen through a proxy that
refuses chosen operations with AccessDenied, as IAM would (the real IAM-enforced twin is exercised by the
end-to-end tests through the twin's faults).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from runbooks.checks.backup_posture import build_checks, max_age_limit
from runbooks.checks.base import CheckResult, Status, run_checks
from runbooks.errors import BadParameter
from runbooks.inventory.loader import load
from runbooks.inventory.models import Bucket, BucketRole, Environment
from runbooks.providers.s3 import S3
from runbooks.state.backups import MANIFEST_FORMAT

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
Deny = Callable[[str, dict[str, Any]], bool]


class _Refusing:
    """A boto3 client that answers AccessDenied to the operations ``deny(op, kwargs)`` selects."""

    def __init__(self, client: Any, deny: Deny):
        self._client, self._deny = client, deny

    def __getattr__(self, op: str) -> Any:
        fn = getattr(self._client, op)
        if not callable(fn):
            return fn

        def call(*args: Any, **kw: Any) -> Any:
            if self._deny(op, kw):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, op)
            return fn(*args, **kw)

        return call


def _as(base: S3, label: str, deny: Deny) -> S3:
    s3 = S3(access_key_id="test", secret_access_key="test", region="us-east-1", label=label)
    s3.client = _Refusing(base.client, deny)
    return s3


@pytest.fixture
def env() -> Environment:
    return load("production")


class World:
    """A production-like layout in moto, with knobs to break each promise."""

    def __init__(self, env: Environment, lock: tuple[str, int] | None = None):
        self.env = env
        mode, days = lock or (env.backup.lock_mode, env.backup.retention_days)
        self.admin = S3(access_key_id="test", secret_access_key="test", region="us-east-1", label="admin")
        self.backups = env.backup_bucket.name
        self.app = env.app_buckets[0].name
        c = self.admin.client
        c.create_bucket(Bucket=self.backups, ObjectLockEnabledForBucket=True)
        c.put_object_lock_configuration(
            Bucket=self.backups,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
            },
        )
        c.put_bucket_encryption(
            Bucket=self.backups,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )
        c.put_public_access_block(
            Bucket=self.backups,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        c.create_bucket(Bucket=self.app)
        c.put_object(Bucket=self.app, Key="tenants/1/doc.txt", Body=b"customer data")
        self.backup_at(NOW - timedelta(hours=2))
        # what IAM allows each credential (the healthy posture)
        self.writer_deny: Deny = lambda op, kw: kw.get("Bucket") == self.app or op in ("delete_object", "get_object")
        self.runtime_deny: Deny = lambda op, kw: kw.get("Bucket") == self.backups
        self.drill_deny: Deny = lambda op, kw: op in ("put_object", "delete_object")

    def backup_at(self, when: datetime, *, corrupt: bool = False, sidecar: bool = True) -> str:
        key = f"{self.env.backup.prefix}{when:%Y/%m/%d}/spectral-{when:%Y%m%dT%H%M%SZ}.dump.zst.age"
        data = b"age-encryption.org/v1 ... ciphertext" * 100
        vid = self.admin.put_bytes(self.backups, key, data)
        recorded = hashlib.sha256(data + (b"x" if corrupt else b"")).hexdigest()
        if sidecar:
            self.admin.put_json(
                self.backups,
                key + ".manifest.json",
                {
                    "format": MANIFEST_FORMAT,
                    "finished_at": when.isoformat(),
                    "object": {"key": key, "version_id": vid, "sha256": recorded, "size": len(data)},
                },
            )
        return key

    def results(self, env: Environment | None = None, **kw: Any) -> dict[str, CheckResult]:
        checks = build_checks(
            env or self.env,
            writer=_as(self.admin, "backup-writer", self.writer_deny),
            runtime=_as(self.admin, "runtime", self.runtime_deny),
            drill=_as(self.admin, "drill-reader", self.drill_deny),
            clock=lambda: NOW,
            **kw,
        )
        return {r.check: r for r in run_checks(checks)}


@pytest.fixture
def world(env: Environment) -> Iterator[World]:
    with mock_aws():
        yield World(env)


def _status(world: World, check: str, **kw: Any) -> CheckResult:
    return world.results(**kw)[check]


def test_healthy_posture_passes_every_check(world: World) -> None:
    results = world.results()
    assert {c: r.status for c, r in results.items()} == {c: Status.PASS for c in results}, {
        c: r.evidence for c, r in results.items() if r.status is not Status.PASS
    }
    assert len(results) == 11


def test_every_non_pass_has_evidence_and_remediation(world: World) -> None:
    world.admin.client.delete_bucket_encryption(Bucket=world.backups)
    world.writer_deny = lambda op, kw: False
    for r in world.results().values():
        assert r.evidence
        if r.status is not Status.PASS:
            assert r.remediation


def test_backup_bucket_that_is_also_an_app_bucket_fails(world: World, env: Environment) -> None:
    shared = env.model_copy(update={"buckets": [*env.buckets, Bucket(name=world.backups, role=BucketRole.APP_DATA)]})
    r = world.results(env=shared)["backup.isolated"]
    assert r.status is Status.FAIL and "also an application-data bucket" in r.evidence


def test_versioning_off_fails(world: World) -> None:
    world.admin.client.create_bucket(Bucket="unversioned-backups")
    env = world.env.model_copy(
        update={"buckets": [Bucket(name="unversioned-backups", role=BucketRole.BACKUPS), *world.env.app_buckets]}
    )
    r = world.results(env=env)
    assert r["backup.versioning"].status is Status.FAIL
    assert r["backup.object_lock"].status is Status.FAIL
    assert r["backup.freshness"].status is Status.FAIL  # and no backup there either
    assert r["backup.checksum"].status is Status.FAIL


@pytest.mark.parametrize(
    ("mode", "days", "expected", "needle"),
    [
        ("COMPLIANCE", 35, Status.PASS, "COMPLIANCE 35"),
        ("COMPLIANCE", 7, Status.FAIL, "< policy 35"),
        ("GOVERNANCE", 35, Status.FAIL, "policy mode is COMPLIANCE"),
    ],
)
def test_object_lock_retention_and_mode(env: Environment, mode: str, days: int, expected: Status, needle: str) -> None:
    with mock_aws():
        r = _status(World(env, lock=(mode, days)), "backup.object_lock")
    assert r.status is expected and needle in r.evidence


def test_object_lock_stricter_mode_than_policy_warns(world: World, env: Environment) -> None:
    lenient = env.model_copy(update={"backup": env.backup.model_copy(update={"lock_mode": "GOVERNANCE"})})
    r = world.results(env=lenient)["backup.object_lock"]
    assert r.status is Status.WARN


def test_no_default_encryption_fails_and_other_algorithm_warns(world: World) -> None:
    world.admin.client.put_bucket_encryption(
        Bucket=world.backups,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    assert _status(world, "backup.encryption").status is Status.WARN
    world.admin.client.delete_bucket_encryption(Bucket=world.backups)
    r = _status(world, "backup.encryption")
    assert r.status in (Status.FAIL, Status.WARN)  # moto may keep an SSE-S3 default, as S3 does since 2023
    if r.status is Status.FAIL:
        assert "no default encryption" in r.evidence


def test_public_access_not_blocked_fails(world: World) -> None:
    world.admin.client.put_public_access_block(
        Bucket=world.backups,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    r = _status(world, "backup.public_access")
    assert r.status is Status.FAIL and "BlockPublicPolicy" in r.evidence
    world.admin.client.delete_public_access_block(Bucket=world.backups)
    assert _status(world, "backup.public_access").status is Status.FAIL


def test_stale_backup_fails_and_max_age_parameter_applies(world: World) -> None:
    assert _status(world, "backup.freshness").status is Status.PASS  # 2 h old, policy 26 h
    r = world.results(max_age_hours=1)["backup.freshness"]
    assert r.status is Status.FAIL and "2.0 h ago (max 1 h)" in r.evidence and "nightly-backup" in r.remediation
    world.backup_at(NOW - timedelta(days=3) + timedelta(seconds=1))  # older: does not become the latest
    assert _status(world, "backup.freshness").status is Status.PASS


def test_freshness_reads_the_latest_backup(env: Environment) -> None:
    with mock_aws():
        w = World(env)
        key = w.backup_at(NOW - timedelta(days=3) + timedelta(days=3, minutes=-1))
        r = _status(w, "backup.freshness")
    assert r.subject == key and "0.0 h ago" in r.evidence


def test_no_backup_fails_freshness_and_checksum(env: Environment) -> None:
    with mock_aws():
        w = World(env)  # its backup is under nightly/: look elsewhere
        env2 = env.model_copy(update={"backup": env.backup.model_copy(update={"prefix": "elsewhere/"})})
        r = w.results(env=env2)
    assert r["backup.freshness"].status is Status.FAIL and "no backup" in r["backup.freshness"].evidence
    assert r["backup.checksum"].status is Status.FAIL


def test_checksum_mismatch_fails(world: World) -> None:
    world.backup_at(NOW - timedelta(hours=1), corrupt=True)
    r = _status(world, "backup.checksum")
    assert r.status is Status.FAIL and "!= sidecar" in r.evidence and "corrupt" in r.remediation


def test_missing_sidecar_fails_checksum(world: World) -> None:
    world.backup_at(NOW - timedelta(hours=1), sidecar=False)
    r = _status(world, "backup.checksum")
    assert r.status is Status.FAIL and "no sidecar" in r.evidence


def test_writer_that_can_delete_a_locked_version_fails(env: Environment) -> None:
    with mock_aws():
        world = World(env, lock=("GOVERNANCE", 35))  # a governance lock yields to a bypass permission
        world.writer_deny = lambda op, kw: kw.get("Bucket") == world.app
        r = _status(world, "writer.cannot_delete_locked")
    assert r.status is Status.FAIL and r.subject.startswith("canary/")
    assert ": allowed" in r.evidence and "version still present: False" in r.evidence


def test_writer_probes_touch_only_canaries(world: World) -> None:
    before = {
        v["Key"]: v["VersionId"]
        for v in world.admin.client.list_object_versions(Bucket=world.backups, Prefix="nightly/")["Versions"]
    }
    world.writer_deny = lambda op, kw: False  # a writer that could delete anything
    world.drill_deny = lambda op, kw: False
    world.results()
    after = {
        v["Key"]: v["VersionId"]
        for v in world.admin.client.list_object_versions(Bucket=world.backups, Prefix="nightly/")["Versions"]
    }
    assert after == before
    markers = world.admin.client.list_object_versions(Bucket=world.backups, Prefix="nightly/").get("DeleteMarkers")
    assert not markers


def test_writer_reading_app_data_fails(world: World) -> None:
    world.writer_deny = lambda op, kw: op == "delete_object"
    r = _status(world, "writer.no_app_read")
    assert r.status is Status.FAIL and f"GetObject {world.app}/tenants/1/doc.txt: allowed" in r.evidence


@pytest.mark.parametrize("allowed", ["list_objects_v2", "get_object", "put_object"])
def test_runtime_with_any_access_to_backups_fails(world: World, allowed: str) -> None:
    world.runtime_deny = lambda op, kw: kw.get("Bucket") == world.backups and op != allowed
    r = _status(world, "runtime.no_backup_access")
    assert r.status is Status.FAIL and ": allowed" in r.evidence


def test_drill_that_can_write_or_delete_fails(world: World) -> None:
    world.drill_deny = lambda op, kw: op == "put_object"
    r = _status(world, "drill.read_only")
    assert r.status is Status.FAIL and "put and delete" in r.remediation


def test_drill_that_cannot_read_fails(world: World) -> None:
    world.drill_deny = lambda op, kw: op in ("put_object", "delete_object", "get_object")
    results = world.results()
    r = results["drill.read_only"]
    assert r.status is Status.FAIL and "GetObject" in r.evidence and "drills cannot run" in r.remediation
    assert results["backup.checksum"].status is Status.FAIL  # the sidecar cannot be read: a FAIL naming why
    assert "AccessDenied" in results["backup.checksum"].evidence


def test_results_are_json_serialisable(world: World) -> None:
    json.dumps([r.as_dict() for r in world.results().values()])


def test_empty_app_bucket_is_probed_with_a_temporary_object(world: World) -> None:
    world.admin.client.delete_object(Bucket=world.app, Key="tenants/1/doc.txt")
    ok = _status(world, "writer.no_app_read")
    assert ok.status is Status.PASS and f"GetObject {world.app}/canary/backup-posture-" in ok.evidence
    world.writer_deny = lambda op, kw: op == "delete_object"
    bad = _status(world, "writer.no_app_read")
    assert bad.status is Status.FAIL and "/canary/backup-posture-" in bad.evidence and ": allowed" in bad.evidence
    assert "Contents" not in world.admin.client.list_objects_v2(Bucket=world.app)  # the probe was removed


@pytest.mark.parametrize(("given", "expected"), [(0, 26.0), (1, 1.0), (72.5, 72.5)])
def test_max_age_zero_means_the_policy(given: float, expected: float) -> None:
    assert max_age_limit(given, 26) == expected


@pytest.mark.parametrize("given", [-5, -0.5])
def test_negative_max_age_is_refused_before_any_check(env: Environment, given: float) -> None:
    with pytest.raises(BadParameter, match="is negative") as e:
        max_age_limit(given, env.backup.max_age_hours)
    assert e.value.name == "max_age_hours" and str(e.value).startswith("max_age_hours (value not shown): ")
    assert "or 0 for the policy's" in e.value.fix
    with mock_aws():
        w = World(env)
        canaries_before = w.admin.client.list_objects_v2(Bucket=w.backups).get("KeyCount")
        with pytest.raises(BadParameter, match="max_age_hours"):
            w.results(max_age_hours=given)
        assert w.admin.client.list_objects_v2(Bucket=w.backups).get("KeyCount") == canaries_before
