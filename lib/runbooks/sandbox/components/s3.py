"""The twin's S3: moto in server mode with IAM enforcement on, laid out as ADR-040 D7 requires.

moto starts with authentication off; ``provision`` creates the ``admin`` user (the only unauthenticated
requests), then switches enforcement on (moto's ``/moto-api/reset-auth`` sets
``INITIAL_NO_AUTH_ACTION_COUNT`` to 0) and builds everything else *as admin*, through IAM:

- ``spectral-app-data`` (application data);
- ``spectral-backups``: versioning, object lock with default retention (mode and days from the sandbox
  inventory's backup policy), default encryption, public access blocked;
- ``spectral-audit``: versioned and object-locked with the inventory's default retention (mode and days):
  the archive of record (``RUNBOOKS_ARCHIVE=s3://spectral-audit/<prefix>``);
- users with access keys (secrets ``<prefix>_aws_access_key_id`` / ``<prefix>_aws_secret_access_key``):
  ``runtime`` (app data only), ``backup-writer`` (put and list backups; explicitly denied deletes,
  governance bypass, retention/lock/versioning/encryption changes and application data),
  ``drill-reader`` (read-only on backups, including the bucket's protection settings), ``audit-writer``
  (puts and reads objects in the audit bucket; denied deletes, governance bypass, retention and bucket
  changes, and every other bucket), ``admin``.

It also generates the backup encryption key pair (age x25519): the identity is the secret
``backup_age_identity``, the recipient goes into the inventory overlay as ``backup.recipient``.

moto authorizes object-lock requests as ``s3:PutObject`` (changing an object's retention or legal hold,
and an upload that sets its own retention or legal hold), so the writer's explicit denies on them would
not bite. The server therefore runs as ``python -m runbooks.sandbox.components.s3`` (:func:`main`): moto's
own server with one hook, :func:`authorize_object_lock`, that asks moto's IAM for the action AWS requires
(``s3:PutObjectRetention``, ``s3:PutObjectLegalHold``, ``s3:BypassGovernanceRetention``) before moto
handles such a request.

Two more things moto does not do, done by the same server hook:

- conditional writes are atomic: moto checks ``If-None-Match: *`` / ``If-Match`` and then writes, so two
  concurrent requests can both pass the check; the hook serialises object PUTs (:data:`PUT_MUTEX`), so
  exactly one of many concurrent conditional creates of a key wins;
- write-once history: in the audit bucket, an object under a ``ledger/``, ``runs/`` or ``seals/`` path segment may only
  be created with ``If-None-Match: *`` (:func:`check_write_once`); on AWS the same rule is a bucket policy
  denying ``s3:PutObject`` when the condition key ``s3:if-none-match`` is absent, which moto's IAM does not
  evaluate. An overwrite of history is refused (403) for every credential.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar

import yaml

from runbooks.inventory.loader import inventory_dir
from runbooks.inventory.models import BucketRole, Environment
from runbooks.sandbox.component import (
    Catcher,
    Component,
    ComponentState,
    FaultDeclaration,
    FaultSpec,
    SandboxContext,
    free_port,
)

NAME = "s3"
ACCOUNT_ID = "123456789012"  #: moto's default account

#: verify-backup-posture checks the bucket layout and the credentials against the inventory's policy
POSTURE = "verify-backup-posture"

FAULTS: dict[str, FaultDeclaration] = {
    "backup-versioning-off": FaultSpec(
        "the backup bucket is created without versioning (and so without object lock, which needs versioning): "
        "an overwrite destroys the previous backup",
        (Catcher(POSTURE, checks=("backup.versioning", "backup.object_lock")),),
    ),
    "backup-no-object-lock": FaultSpec(
        "the backup bucket is versioned but has no object lock / default retention",
        (Catcher(POSTURE, checks=("backup.object_lock",)),),
    ),
    "runtime-reads-backups": FaultSpec(
        "the application runtime credential may list and read the backup bucket",
        (Catcher(POSTURE, checks=("runtime.no_backup_access",)),),
    ),
    "writer-can-delete-backups": FaultSpec(
        "the backup-writer credential may delete object versions and bypass governance retention",
        (Catcher(POSTURE, checks=("writer.cannot_delete_locked",)),),
    ),
    "backup-bucket-is-app-bucket": FaultSpec(
        "the sandbox inventory lists the backup bucket among the application-data buckets (backups are not "
        "isolated from application data)",
        (Catcher(POSTURE, checks=("backup.isolated",)),),
    ),
    "audit-bucket-unlocked": FaultSpec(
        "the audit bucket is versioned but has no object lock / default retention: archived runs could be deleted "
        "or overwritten (`runbooks runs verify` reports it)",
        not_caught="`runbooks runs verify` of the audit bucket reports it (finding bucket_unlocked; "
        "tests/e2e/test_archive_s3.py)",
    ),
}

#: secret-name prefix -> IAM user name
USERS: dict[str, str] = {
    "admin": "admin",
    "runtime": "runtime",
    "backup": "backup-writer",
    "drill": "drill-reader",
    "audit": "audit-writer",
}


def sandbox_inventory_raw() -> dict[str, Any]:
    """The sandbox inventory file as written (before the twin's overlay exists)."""
    return dict(yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text()))


def sandbox_inventory_static() -> Environment:
    raw = sandbox_inventory_raw()
    raw["endpoints_from_sandbox"] = False
    return Environment.model_validate(raw)


def _arn(bucket: str, objects: bool = False) -> str:
    return f"arn:aws:s3:::{bucket}/*" if objects else f"arn:aws:s3:::{bucket}"


def _both(bucket: str) -> list[str]:
    return [_arn(bucket), _arn(bucket, True)]


def _stmt(effect: str, actions: list[str], resources: list[str], sid: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources}


def policies(env: Environment, faults: frozenset[str]) -> dict[str, dict[str, Any]]:
    """IAM user name -> inline policy document."""
    backups = env.backup_bucket.name
    apps = [b.name for b in env.app_buckets if b.name != backups]
    app_res = [r for b in apps for r in _both(b)]
    read_config = [
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetEncryptionConfiguration",
    ]

    runtime = [
        _stmt(
            "Allow",
            ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetBucketLocation"],
            app_res,
            "AppData",
        ),
        _stmt("Allow", ["s3:ListAllMyBuckets"], ["*"], "ListBuckets"),
    ]
    if "runtime-reads-backups" in faults:
        runtime.append(
            _stmt(
                "Allow",
                ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetObject", "s3:GetObjectVersion"],
                _both(backups),
                "FaultRuntimeReadsBackups",
            )
        )

    destroy = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]
    protect = [
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutBucketVersioning",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPublicAccessBlock",
        "s3:DeleteBucket",
    ]
    writer = [
        # multipart uploads: a failed backup must be able to abort its own pending upload
        _stmt(
            "Allow",
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            [_arn(backups, True)],
            "PutBackups",
        ),
        _stmt("Allow", ["s3:ListBucketMultipartUploads"], [_arn(backups)], "ListPendingUploads"),
        _stmt("Allow", ["s3:ListBucket", "s3:ListBucketVersions", *read_config], [_arn(backups)], "ListBackups"),
        _stmt("Deny", protect, _both(backups), "NeverWeakenProtection"),
    ]
    if "writer-can-delete-backups" in faults:
        writer.append(_stmt("Allow", destroy, _both(backups), "FaultWriterDeletes"))
    else:
        writer.append(_stmt("Deny", destroy, _both(backups), "NeverDestroyBackups"))
    if app_res:
        writer.append(_stmt("Deny", ["s3:*"], app_res, "NoApplicationData"))

    drill = [
        _stmt(
            "Allow",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
            [_arn(backups, True)],
            "ReadBackups",
        ),
        _stmt(
            "Allow",
            [
                "s3:ListBucket",
                "s3:ListBucketVersions",
                *read_config,
                "s3:GetBucketPublicAccessBlock",
                "s3:GetPublicAccessBlock",
                "s3:GetBucketPolicy",
                "s3:GetBucketPolicyStatus",
            ],
            [_arn(backups)],
            "ReadBackupConfiguration",
        ),
    ]
    audit = env.audit_bucket.name if env.audit_bucket else "spectral-audit"
    others = [r for b in env.buckets if b.name != audit for r in _both(b.name)]
    audit_writer = [
        _stmt(
            "Allow", ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"], [_arn(audit, True)], "PutAndReadRecords"
        ),
        _stmt(
            "Allow",
            ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetObjectRetention", *read_config],
            _both(audit),
            "ListRecordsAndReadProtection",
        ),
        _stmt("Deny", [*destroy, *protect], _both(audit), "NeverRewriteHistory"),
        _stmt("Deny", ["s3:*"], others, "OnlyTheAuditBucket"),
    ]
    admin = [_stmt("Allow", ["*"], ["*"], "BuildTheTwin")]

    def doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": statements}

    return {
        "admin": doc(admin),
        "runtime": doc(runtime),
        "backup-writer": doc(writer),
        "drill-reader": doc(drill),
        "audit-writer": doc(audit_writer),
    }


class S3Component(Component):
    name: ClassVar[str] = NAME
    depends_on: ClassVar[tuple[str, ...]] = ()
    faults: ClassVar[Mapping[str, FaultDeclaration]] = FAULTS

    def start(self, ctx: SandboxContext) -> ComponentState:
        port = free_port(ctx.host)
        audit = sandbox_inventory_static().audit_bucket
        pid = ctx.spawn(
            NAME,
            [sys.executable, "-m", __name__, "-H", ctx.host, "-p", str(port)],
            env={"MOTO_PORT": str(port), "PYTHONWARNINGS": "ignore", WRITE_ONCE_ENV: audit.name if audit else ""},
        )
        url = f"http://{ctx.host}:{port}"
        return ComponentState(
            name=NAME, address=url, pids=[pid], extra={"endpoint": url, "port": port, "iam_enforced": False}
        )

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        try:
            with urllib.request.urlopen(f"{state.address}/moto-api/config", timeout=2) as r:
                ok = 200 <= r.status < 300
        except OSError as e:
            return False, str(e)
        enforced = "IAM enforced" if state.extra.get("iam_enforced") else "IAM not yet enforced"
        return ok, f"serving ({enforced})"

    # -- provisioning ---------------------------------------------------------------------------

    def _client(
        self,
        ctx: SandboxContext,
        service: str,
        state: ComponentState,
        region: str,
        key: tuple[str, str] = ("bootstrap", "bootstrap"),
    ) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=state.address,
            region_name=region,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def _set_auth(self, state: ComponentState, unauthenticated_requests: str) -> None:
        req = urllib.request.Request(
            f"{state.address}/moto-api/reset-auth",
            data=unauthenticated_requests.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        env = sandbox_inventory_static()
        region = env.endpoints.s3_region
        faults = ctx.faults
        docs = policies(env, faults)

        # 1. bootstrap the admin while moto still accepts unauthenticated requests
        self._set_auth(state, "inf")
        iam = self._client(ctx, "iam", state, region)
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="twin-admin", PolicyDocument=json.dumps(docs["admin"]))
        k = iam.create_access_key(UserName="admin")["AccessKey"]
        admin_key = (k["AccessKeyId"], k["SecretAccessKey"])
        ctx.write_secret("admin_aws_access_key_id", admin_key[0])
        ctx.write_secret("admin_aws_secret_access_key", admin_key[1])
        # 2. from now on every request is authenticated and authorized through IAM
        self._set_auth(state, "0")
        state.extra["iam_enforced"] = True
        iam = self._client(ctx, "iam", state, region, admin_key)
        s3 = self._client(ctx, "s3", state, region, admin_key)

        for prefix, user in USERS.items():
            if user == "admin":
                continue
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName=f"twin-{user}", PolicyDocument=json.dumps(docs[user]))
            k = iam.create_access_key(UserName=user)["AccessKey"]
            ctx.write_secret(f"{prefix}_aws_access_key_id", k["AccessKeyId"])
            ctx.write_secret(f"{prefix}_aws_secret_access_key", k["SecretAccessKey"])

        created: list[str] = []
        for b in env.buckets:
            self._create_bucket(s3, env, b.name, b.role, faults)
            created.append(b.name)

        from pyrage import x25519

        identity = x25519.Identity.generate()
        ctx.write_secret("backup_age_identity", str(identity))
        overlay: dict[str, Any] = {
            "endpoints": {"s3": state.address, "s3_region": region},
            "backup": {"recipient": str(identity.to_public())},
        }
        if "backup-bucket-is-app-bucket" in faults:
            raw_buckets = list(sandbox_inventory_raw()["buckets"])
            overlay["buckets"] = [*raw_buckets, {"name": env.backup_bucket.name, "role": "app_data"}]
        ctx.merge_overlay(overlay)
        state.extra.update(region=region, buckets=created, users=sorted(USERS.values()), account_id=ACCOUNT_ID)

    def _create_bucket(self, s3: Any, env: Environment, name: str, role: BucketRole, faults: frozenset[str]) -> None:
        bucket = next(b for b in env.buckets if b.name == name)
        is_backups = role is BucketRole.BACKUPS
        versioning = bucket.versioning and not (is_backups and "backup-versioning-off" in faults)
        lock = bucket.object_lock if versioning else None
        if is_backups and "backup-no-object-lock" in faults:
            lock = None
        if role is BucketRole.AUDIT and "audit-bucket-unlocked" in faults:
            lock = None
        s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
        if versioning and not lock:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if lock:
            days = env.backup.retention_days if is_backups else lock.days
            mode = env.backup.lock_mode if is_backups else lock.mode
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
                },
            )
        if bucket.encryption:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": bucket.encryption}}]
                },
            )
        if bucket.block_public_access:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )


# -- the server: moto plus the object-lock authorization AWS does ---------------------------------

#: header -> the IAM action AWS requires, besides s3:PutObject, for an upload (put, copy, multipart) carrying it
LOCK_HEADERS: dict[str, str] = {
    "x-amz-object-lock-mode": "PutObjectRetention",
    "x-amz-object-lock-retain-until-date": "PutObjectRetention",
    "x-amz-object-lock-legal-hold": "PutObjectLegalHold",
}
BYPASS_HEADER = "x-amz-bypass-governance-retention"


def lock_actions(method: str, query: dict[str, Any], headers: Any) -> list[str]:
    """The object-lock IAM actions (without ``s3:``) a request on an object needs, which moto does not check."""
    actions: list[str] = []
    if method == "PUT" and "retention" in query:
        actions.append("PutObjectRetention")
    elif method == "PUT" and "legal-hold" in query:
        actions.append("PutObjectLegalHold")
    elif (method == "PUT" and not query.get("partNumber")) or (method == "POST" and "uploads" in query):
        actions += dict.fromkeys(a for h, a in LOCK_HEADERS.items() if headers.get(h))
    if str(headers.get(BYPASS_HEADER, "")).lower() == "true":
        actions.append("BypassGovernanceRetention")
    return actions


def authorize_object_lock(response: Any, method: str, bucket: str, query: dict[str, Any], key: str) -> None:
    """Ask moto's IAM for each action :func:`lock_actions` names; raises moto's AccessDenied when refused."""
    for action in lock_actions(method, query, response.headers):
        response._get_action = lambda action=action: action  # the action moto's IAM request evaluates
        try:
            response._authenticate_and_authorize_s3_action(bucket_name=bucket, key_name=key)
        finally:
            del response._get_action


#: environment variable naming the buckets whose history keys are write-once (comma-separated)
WRITE_ONCE_ENV = "RUNBOOKS_TWIN_WRITE_ONCE_BUCKETS"
#: path segments of write-once keys (the archive's ledger entries and run files)
WRITE_ONCE_SEGMENTS = frozenset({"ledger", "runs", "seals"})
#: serialises object PUTs, so a conditional write's check and write are one step
PUT_MUTEX = threading.Lock()


def is_write_once(bucket: str, key: str, buckets: frozenset[str]) -> bool:
    return bucket in buckets and any(part in WRITE_ONCE_SEGMENTS for part in key.split("/")[:-1])


def check_write_once(
    method: str, bucket: str, key: str, query: dict[str, Any], headers: Any, buckets: frozenset[str]
) -> None:
    """Refuse (403) a PUT of a write-once key without ``If-None-Match: *`` (an overwrite of history)."""
    from moto.s3.exceptions import AccessForbidden

    if method != "PUT" or query.get("partNumber") or not is_write_once(bucket, key, buckets):
        return
    if any(q in query for q in ("retention", "legal-hold", "tagging", "acl")):
        return  # not a write of the object's bytes (IAM decides on these)
    if str(headers.get("If-None-Match", "")).strip() != "*":
        raise AccessForbidden(f"{key} is write-once history: create it with If-None-Match: * (never overwrite it)")


def main(argv: list[str] | None = None) -> None:
    """moto's server (same arguments) with :func:`authorize_object_lock` in front of object PUT and POST,
    PUTs serialised by :data:`PUT_MUTEX` and :func:`check_write_once` on the write-once buckets."""
    from moto.s3.responses import S3Response
    from moto.server import main as moto_main

    put, post = S3Response._key_response_put, S3Response._key_response_post
    write_once = frozenset(b for b in os.environ.get(WRITE_ONCE_ENV, "").split(",") if b)

    def key_put(self: Any, query: dict[str, Any], key_name: str) -> Any:
        authorize_object_lock(self, "PUT", self.bucket_name, query, key_name)
        check_write_once("PUT", self.bucket_name, key_name, query, self.headers, write_once)
        if query.get("partNumber"):
            return put(self, query, key_name)
        with PUT_MUTEX:  # moto checks If-None-Match / If-Match, then writes: make that one step
            return put(self, query, key_name)

    def key_post(self: Any, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str) -> Any:
        authorize_object_lock(self, "POST", bucket_name, query, key_name)
        return post(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_put = key_put  # type: ignore[method-assign]  # moto has no object-lock hook
    S3Response._key_response_post = key_post  # type: ignore[method-assign]  # moto has no object-lock hook
    moto_main(argv)


if __name__ == "__main__":
    main()
