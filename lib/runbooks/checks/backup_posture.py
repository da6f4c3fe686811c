"""ADR-040 D7 as checks: the backup bucket's configuration, the latest backup, and who may do what.

Bucket configuration and the latest backup are read with the drill-reader credential (read-only).
Permissions are proved by attempting the operation with each credential: every write attempt goes to
a canary object under ``canary/`` written for the purpose, never to a real backup. A canary stays in
the bucket under its retention lock (a few bytes) — that is the point of the lock.
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runbooks.checks.base import CheckResult
from runbooks.checks.builder import CheckFamily, CheckFn
from runbooks.errors import BadParameter
from runbooks.inventory.models import BackupPolicy, Bucket, Environment
from runbooks.plan import utcnow
from runbooks.providers.base import ProviderError
from runbooks.providers.s3 import S3, Attempt, ObjectRef
from runbooks.state.backups import latest_backup, manifest_key

CANARY_PREFIX = "canary/"
CANARY_BODY = b"verify-backup-posture canary: not a backup\n"
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

#: the checks of verify-backup-posture, each id registered once
BACKUP = CheckFamily("backup")


def _denied(a: Attempt) -> bool:
    return not a.allowed


class _Shared:
    """What several checks need once: the latest backup and its sidecar, the canary (thread-safe, lazy)."""

    def __init__(self, writer: S3, drill: S3, bucket: str, prefix: str, clock: Callable[[], datetime]):
        self.writer, self.drill, self.bucket, self.prefix, self.clock = writer, drill, bucket, prefix, clock
        self._lock = threading.Lock()
        self._latest: tuple[ObjectRef | None, dict[str, Any] | None, str] | None = None
        self._canaries: dict[str, tuple[str, str | None]] = {}

    def latest(self) -> tuple[ObjectRef | None, dict[str, Any] | None, str]:
        """(object, sidecar or None, why the sidecar is missing)."""
        with self._lock:
            if self._latest is None:
                obj = latest_backup(self.drill, self.bucket, self.prefix)
                sidecar, why = None, ""
                if obj is not None:
                    try:
                        sidecar = self.drill.get_json(self.bucket, manifest_key(obj.key))
                    except ProviderError as e:
                        why = str(e)
                self._latest = (obj, sidecar, why)
            return self._latest

    def canary(self, purpose: str) -> tuple[str, str | None]:
        """(key, version id) of a fresh canary object written with the backup-writer credential.

        One canary per purpose, so that one check's delete attempt never changes what another observes.
        """
        with self._lock:
            if purpose not in self._canaries:
                key = f"{CANARY_PREFIX}{purpose}-{self.clock():%Y%m%dT%H%M%SZ}-{_secrets.token_hex(4)}.txt"
                version = self.writer.put_bytes(self.bucket, key, CANARY_BODY, content_type="text/plain")
                self._canaries[purpose] = (key, version)
            return self._canaries[purpose]


@dataclass(frozen=True)
class _Run:
    """What the checks of one run share: the three credentials, the bucket, the policy, the cache."""

    writer: S3
    runtime: S3
    drill: S3
    bucket: Bucket
    policy: BackupPolicy
    max_age: float
    clock: Callable[[], datetime]
    shared: _Shared
    app_names: list[str]
    app_only: list[str]

    @property
    def name(self) -> str:
        return self.bucket.name


def max_age_limit(max_age_hours: float, policy_hours: float) -> float:
    """The runbook's ``max_age_hours`` (0: the policy's); BadParameter (naming it) when negative."""
    if max_age_hours < 0:
        raise BadParameter(
            "max_age_hours",
            max_age_hours,
            "is negative",
            f"give the maximum age of the latest backup in hours, or 0 for the policy's ({policy_hours:g} h)",
        )
    return float(max_age_hours or policy_hours)


@BACKUP.check("backup.isolated", title="the backup bucket holds no application data")
def isolated(run: _Run) -> CheckResult:
    name, app_names = run.name, run.app_names
    if name in app_names:
        return isolated.fail(
            name,
            f"the backup bucket is also an application-data bucket (app_data buckets: {', '.join(app_names)})",
            "give backups their own bucket, written only by the backup-writer credential, "
            "and move application data out of it",
        )
    return isolated.ok(
        name,
        f"distinct from every application-data bucket ({', '.join(app_names) or 'none declared'})",
    )


@BACKUP.check("backup.versioning", title="versioning is enabled on the backup bucket")
def versioning(run: _Run) -> CheckResult:
    name, drill = run.name, run.drill
    status = drill.versioning(name)
    if status == "Enabled":
        return versioning.ok(name, "versioning Enabled")
    return versioning.fail(
        name,
        f"versioning is {status or 'never enabled'}",
        "enable versioning on the backup bucket (an overwrite must never destroy a backup)",
    )


@BACKUP.check("backup.object_lock", title="object lock with the policy's default retention")
def object_lock(run: _Run) -> CheckResult:
    name, policy, drill = run.name, run.policy, run.drill
    cfg = drill.object_lock(name)
    fix = f"enable object lock with a default retention of {policy.lock_mode} for at least {policy.retention_days} days"
    if not cfg or cfg.get("ObjectLockEnabled") != "Enabled":
        return object_lock.fail(name, "object lock is not enabled", fix)
    rule = (cfg.get("Rule") or {}).get("DefaultRetention") or {}
    days = int(rule.get("Days") or 0) or 365 * int(rule.get("Years") or 0)
    mode = rule.get("Mode")
    evidence = f"object lock Enabled, default retention {mode or 'none'} {days} day(s)"
    if not rule:
        return object_lock.fail(name, "object lock enabled without default retention", fix)
    if days < policy.retention_days:
        return object_lock.fail(name, evidence + f" < policy {policy.retention_days}", fix)
    if mode != policy.lock_mode:
        weaker = mode == "GOVERNANCE" and policy.lock_mode == "COMPLIANCE"
        make = object_lock.fail if weaker else object_lock.warn
        return make(name, evidence + f"; policy mode is {policy.lock_mode}", fix)
    return object_lock.ok(name, evidence)


@BACKUP.check("backup.encryption", title="default encryption as the inventory says")
def encryption(run: _Run) -> CheckResult:
    name, bucket, drill = run.name, run.bucket, run.drill
    rules = drill.encryption(name)
    found = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules or []]
    algos: list[str] = [str(a) for a in found if a]
    if not algos:
        return encryption.fail(
            name,
            "no default encryption",
            f"set default encryption ({bucket.encryption or 'aws:kms'}) on the bucket",
        )
    if bucket.encryption and bucket.encryption not in algos:
        return encryption.warn(
            name,
            f"default encryption {', '.join(algos)}; inventory expects {bucket.encryption}",
            f"switch default encryption to {bucket.encryption} or correct the inventory",
        )
    return encryption.ok(name, f"default encryption {', '.join(algos)}")


@BACKUP.check("backup.public_access", title="all four Block Public Access settings on")
def public_access(run: _Run) -> CheckResult:
    name, drill = run.name, run.drill
    pab = drill.public_access_block(name) or {}
    off = [f for f in PAB_FLAGS if not pab.get(f)]
    if off:
        return public_access.fail(
            name,
            f"public access not fully blocked: {', '.join(off)} off",
            "turn on all four Block Public Access settings",
        )
    return public_access.ok(name, "all four Block Public Access settings on")


@BACKUP.check("backup.freshness", title="the latest backup is younger than the maximum age")
def freshness(run: _Run) -> CheckResult:
    name, policy, shared, clock, max_age = run.name, run.policy, run.shared, run.clock, run.max_age
    obj, sidecar, _ = shared.latest()
    fix = "run nightly-backup now and find out why the schedule did not (cron job, credentials, logs)"
    if obj is None:
        return freshness.fail(name, f"no backup under {policy.prefix}", fix)
    when = datetime.fromisoformat(sidecar["finished_at"]) if sidecar else obj.last_modified
    age_h = (clock() - when.astimezone(UTC)).total_seconds() / 3600
    evidence = f"latest {obj.key} finished {when:%Y-%m-%d %H:%M}Z, {age_h:.1f} h ago (max {max_age:g} h)"
    if age_h > max_age:
        return freshness.fail(obj.key, evidence, fix)
    return freshness.ok(obj.key, evidence)


@BACKUP.check("backup.checksum", title="the latest backup matches its sidecar's sha256 and size")
def checksum(run: _Run) -> CheckResult:
    name, shared, drill = run.name, run.shared, run.drill
    obj, sidecar, why = shared.latest()
    if obj is None:
        return checksum.fail(name, "no backup to verify", "run nightly-backup")
    if sidecar is None:
        return checksum.fail(
            obj.key,
            f"no sidecar manifest ({why})",
            "take a new backup with nightly-backup; a backup without sidecar cannot be verified",
        )
    o = sidecar["object"]
    h, size = hashlib.sha256(), 0
    with closing(drill.open(name, obj.key, o.get("version_id"))) as body:
        for chunk in body.iter_chunks(1 << 20):
            h.update(chunk)
            size += len(chunk)
    if h.hexdigest() != o["sha256"] or size != o["size"]:
        return checksum.fail(
            obj.key,
            f"stored sha256 {h.hexdigest()[:16]}… size {size} != sidecar {o['sha256'][:16]}… size {o['size']}",
            "the backup is corrupt: take a new backup now, keep the corrupt version for "
            "investigation, and run restore-drill on the new one",
        )
    return checksum.ok(obj.key, f"sha256 {o['sha256'][:16]}… and size {size} match the sidecar")


@BACKUP.check("writer.cannot_delete_locked", title="the backup-writer cannot delete a locked version")
def writer_cannot_delete(run: _Run) -> CheckResult:
    name, shared, writer, drill = run.name, run.shared, run.writer, run.drill
    key, version = shared.canary("writer")
    v = {"VersionId": version} if version else {}  # no version id when versioning is off
    tries = [
        writer.attempt("DeleteObjectVersion", writer.client.delete_object, Bucket=name, Key=key, **v),
        writer.attempt(
            "DeleteObjectVersion+BypassGovernance",
            writer.client.delete_object,
            Bucket=name,
            Key=key,
            BypassGovernanceRetention=True,
            **v,
        ),
    ]
    still = drill.attempt("HeadObject(version)", drill.client.head_object, Bucket=name, Key=key, **v)
    evidence = f"canary {key}: " + "; ".join(map(str, tries)) + f"; version still present: {still.allowed}"
    if all(map(_denied, tries)) and still.allowed:
        return writer_cannot_delete.ok(key, evidence)
    return writer_cannot_delete.fail(
        key,
        evidence,
        "remove s3:DeleteObjectVersion and s3:BypassGovernanceRetention from the "
        "backup-writer's policy, and keep a default retention lock on the bucket",
    )


@BACKUP.check("writer.no_app_read", title="the backup-writer cannot read application data")
def writer_no_app_read(run: _Run) -> CheckResult:
    writer, runtime, clock, app_only = run.writer, run.runtime, run.clock, run.app_only
    tries: list[Attempt] = []
    for app in app_only:
        tries.append(writer.attempt(f"ListBucket {app}", writer.client.list_objects_v2, Bucket=app, MaxKeys=1))
        sample, made = _first_key(runtime, app), False
        if sample is None:  # an empty bucket: the runtime (which owns app data) writes a probe object
            probe = f"{CANARY_PREFIX}backup-posture-{clock():%Y%m%dT%H%M%SZ}-{_secrets.token_hex(4)}.txt"
            put = runtime.attempt(
                "PutObject",
                runtime.client.put_object,
                Bucket=app,
                Key=probe,
                Body=CANARY_BODY,
                ChecksumAlgorithm="SHA256",
            )
            sample, made = (probe, True) if put.allowed else (None, False)
        if sample is not None:
            tries.append(writer.attempt(f"GetObject {app}/{sample}", writer.client.get_object, Bucket=app, Key=sample))
        if made:
            runtime.attempt("DeleteObject", runtime.client.delete_object, Bucket=app, Key=sample)
    evidence = "; ".join(map(str, tries)) or "no application-data bucket declared"
    if all(map(_denied, tries)):
        return writer_no_app_read.ok(", ".join(app_only) or "-", evidence)
    return writer_no_app_read.fail(
        ", ".join(app_only),
        evidence,
        "the backup-writer must only put objects into the backup bucket: remove its "
        "read access to application-data buckets",
    )


@BACKUP.check("runtime.no_backup_access", title="the runtime credential cannot touch the backup bucket")
def runtime_no_access(run: _Run) -> CheckResult:
    name, policy, shared, runtime, clock = run.name, run.policy, run.shared, run.runtime, run.clock
    obj, _, _ = shared.latest()
    tries = [
        runtime.attempt("ListBucket", runtime.client.list_objects_v2, Bucket=name, Prefix=policy.prefix, MaxKeys=1)
    ]
    if obj is not None:
        tries.append(runtime.attempt(f"GetObject {obj.key}", runtime.client.get_object, Bucket=name, Key=obj.key))
    probe = f"{CANARY_PREFIX}runtime-{clock():%Y%m%dT%H%M%SZ}-{_secrets.token_hex(4)}.txt"
    tries.append(
        runtime.attempt(
            f"PutObject {probe}",
            runtime.client.put_object,
            Bucket=name,
            Key=probe,
            Body=CANARY_BODY,
            ChecksumAlgorithm="SHA256",
        )
    )
    evidence = "; ".join(map(str, tries))
    if all(map(_denied, tries)):
        return runtime_no_access.ok(name, evidence)
    return runtime_no_access.fail(
        name,
        evidence,
        "remove every permission on the backup bucket from the runtime credential "
        "(a compromised runtime must neither exfiltrate nor destroy backups)",
    )


@BACKUP.check("drill.read_only", title="the drill-reader reads backups and writes nothing")
def drill_read_only(run: _Run) -> CheckResult:
    name, shared, drill, clock = run.name, run.shared, run.drill, run.clock
    obj, _, _ = shared.latest()
    reads = [drill.attempt("ListBucket", drill.client.list_objects_v2, Bucket=name, MaxKeys=1)]
    if obj is not None:
        reads.append(
            drill.attempt(f"GetObject {obj.key}", drill.client.get_object, Bucket=name, Key=obj.key, Range="bytes=0-0")
        )
    key, version = shared.canary("drill")
    probe = f"{CANARY_PREFIX}drill-{clock():%Y%m%dT%H%M%SZ}-{_secrets.token_hex(4)}.txt"
    writes = [
        drill.attempt(
            f"PutObject {probe}",
            drill.client.put_object,
            Bucket=name,
            Key=probe,
            Body=CANARY_BODY,
            ChecksumAlgorithm="SHA256",
        ),
        drill.attempt(
            f"DeleteObjectVersion {key}",
            drill.client.delete_object,
            Bucket=name,
            Key=key,
            BypassGovernanceRetention=True,
            **({"VersionId": version} if version else {}),
        ),
        drill.attempt(f"DeleteObject {key}", drill.client.delete_object, Bucket=name, Key=key),
    ]
    evidence = "; ".join(map(str, reads + writes))
    if not all(a.allowed for a in reads):
        return drill_read_only.fail(
            name,
            evidence,
            "grant the drill-reader s3:ListBucket and s3:GetObject(Version) on the backup bucket, or drills cannot run",
        )
    if not all(map(_denied, writes)):
        return drill_read_only.fail(
            name,
            evidence,
            "the drill credential must be read-only: remove put and delete permissions",
        )
    return drill_read_only.ok(name, evidence)


def build_checks(
    env: Environment,
    *,
    writer: S3,
    runtime: S3,
    drill: S3,
    max_age_hours: float | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> list[CheckFn]:
    """The checks of verify-backup-posture for ``env``, in a stable order."""
    bucket, policy = env.backup_bucket, env.backup
    app_names = [b.name for b in env.app_buckets]
    run = _Run(
        writer=writer,
        runtime=runtime,
        drill=drill,
        bucket=bucket,
        policy=policy,
        max_age=max_age_limit(max_age_hours or 0, policy.max_age_hours),
        clock=clock,
        shared=_Shared(writer, drill, bucket.name, policy.prefix, clock),
        app_names=app_names,
        # buckets whose data the writer must not read (the backup bucket itself is judged by backup.isolated)
        app_only=[n for n in app_names if n != bucket.name],
    )

    return [
        isolated.on(run.name, run),
        versioning.on(run.name, run),
        object_lock.on(run.name, run),
        encryption.on(run.name, run),
        public_access.on(run.name, run),
        freshness.on(run.name, run),
        checksum.on(run.name, run),
        writer_cannot_delete.on(run.name, run),
        writer_no_app_read.on(", ".join(run.app_only) or "-", run),
        runtime_no_access.on(run.name, run),
        drill_read_only.on(run.name, run),
    ]


def _first_key(s3: S3, bucket: str) -> str | None:
    """A key of ``bucket`` visible to ``s3`` (used to probe reads by another credential)."""
    try:
        return next((o.key for o in s3.list_objects(bucket)), None)
    except ProviderError:
        return None
