"""The twin's S3 enforces IAM for real and is laid out as ADR-040 D7 requires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from runbooks.sandbox.fixture import Sandbox

pytestmark = pytest.mark.sandbox

BACKUPS = "spectral-backups"
APP = "spectral-app-data"


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_backup_bucket_is_versioned_locked_encrypted_and_private(sandbox: Sandbox) -> None:
    inv = sandbox.inventory()
    s3 = sandbox.s3_client("drill-reader")  # the drill credential can read the bucket's protection settings
    assert s3.get_bucket_versioning(Bucket=BACKUPS)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=BACKUPS)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == (inv.backup.lock_mode, inv.backup.retention_days)
    rules = s3.get_bucket_encryption(Bucket=BACKUPS)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == inv.backup_bucket.encryption
    pab = s3.get_public_access_block(Bucket=BACKUPS)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4


def test_audit_bucket_is_versioned_and_locked(sandbox: Sandbox) -> None:
    s3 = sandbox.s3_client("admin")
    assert s3.get_bucket_versioning(Bucket="spectral-audit")["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket="spectral-audit")["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"


def test_runtime_is_denied_the_backup_bucket_but_uses_app_data(sandbox: Sandbox) -> None:
    runtime = sandbox.s3_client("runtime")
    runtime.put_object(Bucket=APP, Key="tenants/1/avatar.png", Body=b"png")
    assert runtime.get_object(Bucket=APP, Key="tenants/1/avatar.png")["Body"].read() == b"png"
    sandbox.s3_client("backup-writer").put_object(Bucket=BACKUPS, Key="nightly/runtime-probe", Body=b"x")
    with pytest.raises(ClientError) as err:
        runtime.list_objects_v2(Bucket=BACKUPS)
    assert _code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        runtime.get_object(Bucket=BACKUPS, Key="nightly/runtime-probe")
    assert _code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        runtime.put_object(Bucket=BACKUPS, Key="nightly/evil", Body=b"x")
    assert _code(err) == "AccessDenied"


def test_backup_writer_puts_but_cannot_destroy_or_weaken(sandbox: Sandbox) -> None:
    writer = sandbox.s3_client("backup-writer")
    v1 = writer.put_object(Bucket=BACKUPS, Key="nightly/locked.dump", Body=b"one")["VersionId"]
    writer.put_object(Bucket=BACKUPS, Key="nightly/locked.dump", Body=b"two")  # overwrite keeps v1
    keys = writer.list_object_versions(Bucket=BACKUPS, Prefix="nightly/locked.dump")["Versions"]
    assert v1 in {v["VersionId"] for v in keys} and len(keys) == 2
    for call in (
        lambda: writer.delete_object(Bucket=BACKUPS, Key="nightly/locked.dump", VersionId=v1),
        lambda: writer.delete_object(
            Bucket=BACKUPS, Key="nightly/locked.dump", VersionId=v1, BypassGovernanceRetention=True
        ),
        lambda: writer.put_bucket_versioning(Bucket=BACKUPS, VersioningConfiguration={"Status": "Suspended"}),
        lambda: writer.put_object_lock_configuration(
            Bucket=BACKUPS,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        ),
        lambda: writer.get_object(Bucket=APP, Key="tenants/1/avatar.png"),
        lambda: writer.list_objects_v2(Bucket=APP),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == "AccessDenied"
    # the object lock is real too: even the admin cannot delete a locked version without bypassing governance
    with pytest.raises(ClientError) as err:
        sandbox.s3_client("admin").delete_object(Bucket=BACKUPS, Key="nightly/locked.dump", VersionId=v1)
    assert _code(err) == "AccessDenied"
    assert (
        sandbox.s3_client("drill-reader")
        .get_object(Bucket=BACKUPS, Key="nightly/locked.dump", VersionId=v1)["Body"]
        .read()
        == b"one"
    )


def test_drill_reader_reads_backups_and_cannot_write(sandbox: Sandbox) -> None:
    sandbox.s3_client("backup-writer").put_object(Bucket=BACKUPS, Key="nightly/drill.dump", Body=b"dump")
    drill = sandbox.s3_client("drill-reader")
    assert drill.get_object(Bucket=BACKUPS, Key="nightly/drill.dump")["Body"].read() == b"dump"
    assert drill.list_object_versions(Bucket=BACKUPS, Prefix="nightly/")["Versions"]
    for call in (
        lambda: drill.put_object(Bucket=BACKUPS, Key="nightly/drill.dump", Body=b"overwrite"),
        lambda: drill.delete_object(Bucket=BACKUPS, Key="nightly/drill.dump"),
        lambda: drill.get_object(Bucket=APP, Key="tenants/1/avatar.png"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == "AccessDenied"


def test_unknown_credentials_are_rejected(sandbox: Sandbox) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=sandbox.address("s3"),
        region_name="us-east-1",
        aws_access_key_id="AKIA" + "IOSFODNN7EXAMPLE",
        aws_secret_access_key="wrong",
    )
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=APP)
    assert _code(err) in {"InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch"}


def test_inventory_overlay_points_at_the_twin_and_the_age_pair_matches(sandbox: Sandbox) -> None:
    from pyrage import decrypt, encrypt, x25519

    import runbooks

    inv = runbooks.load_inventory("sandbox")  # through RUNBOOKS_SANDBOX, as notebooks do
    assert inv.endpoints.s3 == sandbox.address("s3")
    assert [b.name for b in inv.app_buckets] == [APP]
    recipient = x25519.Recipient.from_str(inv.backup.recipient)
    identity = x25519.Identity.from_str(sandbox.secret("backup_age_identity"))
    assert decrypt(encrypt(b"dump", [recipient]), [identity]) == b"dump"


def test_backup_writer_can_abort_its_own_multipart_upload(sandbox: Sandbox) -> None:
    # a failed nightly backup must not leave pending parts behind: the writer aborts its own upload
    writer = sandbox.s3_client("backup-writer")
    key = "nightly/aborted.dump.zst.age"
    upload = writer.create_multipart_upload(Bucket=BACKUPS, Key=key)["UploadId"]
    writer.upload_part(Bucket=BACKUPS, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    writer.abort_multipart_upload(Bucket=BACKUPS, Key=key, UploadId=upload)
    pending = writer.list_multipart_uploads(Bucket=BACKUPS).get("Uploads", [])
    assert upload not in {u["UploadId"] for u in pending}
    with pytest.raises(ClientError) as err:
        sandbox.s3_client("runtime").abort_multipart_upload(Bucket=BACKUPS, Key=key, UploadId="x")
    assert _code(err) == "AccessDenied"


def test_backup_writer_cannot_touch_object_lock(sandbox: Sandbox) -> None:
    # moto alone authorizes all of these as s3:PutObject; the twin's server asks IAM for the real action
    writer, admin = sandbox.s3_client("backup-writer"), sandbox.s3_client("admin")
    key = "nightly/lock-probe.dump"
    vid = writer.put_object(Bucket=BACKUPS, Key=key, Body=b"dump")["VersionId"]
    until = admin.head_object(Bucket=BACKUPS, Key=key, VersionId=vid)["ObjectLockRetainUntilDate"]
    soon = datetime.now(UTC) + timedelta(seconds=5)
    lock = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": soon}
    short = {"Mode": "GOVERNANCE", "RetainUntilDate": soon}
    for call in (
        lambda: writer.put_object_legal_hold(Bucket=BACKUPS, Key=key, VersionId=vid, LegalHold={"Status": "ON"}),
        lambda: writer.put_object_retention(Bucket=BACKUPS, Key=key, VersionId=vid, Retention=short),
        lambda: writer.put_object_retention(
            Bucket=BACKUPS, Key=key, VersionId=vid, Retention=short, BypassGovernanceRetention=True
        ),
        lambda: writer.put_object(Bucket=BACKUPS, Key="nightly/short-lived.dump", Body=b"x", **lock),
        lambda: writer.put_object(Bucket=BACKUPS, Key="nightly/held.dump", Body=b"x", ObjectLockLegalHoldStatus="ON"),
        lambda: writer.create_multipart_upload(Bucket=BACKUPS, Key="nightly/short-lived.dump", **lock),
        lambda: writer.copy_object(
            Bucket=BACKUPS, Key="nightly/copy.dump", CopySource={"Bucket": BACKUPS, "Key": key}, **lock
        ),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == "AccessDenied"
    head = admin.head_object(Bucket=BACKUPS, Key=key, VersionId=vid)
    assert head["ObjectLockRetainUntilDate"] == until and "ObjectLockLegalHoldStatus" not in head
    listed = admin.list_object_versions(Bucket=BACKUPS, Prefix="nightly/")["Versions"]
    assert not {"nightly/short-lived.dump", "nightly/held.dump", "nightly/copy.dump"} & {v["Key"] for v in listed}
    # the hook asks IAM, it does not refuse object lock as such: the admin may
    admin.put_object_legal_hold(Bucket=BACKUPS, Key=key, VersionId=vid, LegalHold={"Status": "ON"})
    admin.put_object_legal_hold(Bucket=BACKUPS, Key=key, VersionId=vid, LegalHold={"Status": "OFF"})


def test_backup_writer_cannot_delete_in_any_form(sandbox: Sandbox) -> None:
    writer, admin = sandbox.s3_client("backup-writer"), sandbox.s3_client("admin")
    key = "nightly/keep.dump"
    vid = writer.put_object(Bucket=BACKUPS, Key=key, Body=b"dump")["VersionId"]
    for call in (
        lambda: writer.delete_object(Bucket=BACKUPS, Key=key),  # would add a delete marker
        lambda: writer.delete_object(Bucket=BACKUPS, Key=key, VersionId=vid),
        lambda: writer.delete_object(Bucket=BACKUPS, Key=key, VersionId=vid, BypassGovernanceRetention=True),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == "AccessDenied"
    for bypass in (False, True):
        out = writer.delete_objects(
            Bucket=BACKUPS,
            Delete={"Objects": [{"Key": key, "VersionId": vid}, {"Key": key}]},
            BypassGovernanceRetention=bypass,
        )
        assert not out.get("Deleted")
        assert [e["Code"] for e in out["Errors"]] == ["AccessDenied", "AccessDenied"]
    versions = admin.list_object_versions(Bucket=BACKUPS, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [vid] and not versions.get("DeleteMarkers")
