"""Each fault of the twin produces its misconfiguration (and the healthy twin does not have it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from runbooks.sandbox import faults as fault_catalogue
from runbooks.sandbox.fixture import Sandbox

pytestmark = pytest.mark.sandbox

BACKUPS = "spectral-backups"


def _versioning_off(sbx: Sandbox) -> None:
    admin = sbx.s3_client("admin")
    assert admin.get_bucket_versioning(Bucket=BACKUPS).get("Status") in (None, "Suspended")
    writer = sbx.s3_client("backup-writer")
    writer.put_object(Bucket=BACKUPS, Key="nightly/x", Body=b"one")
    writer.put_object(Bucket=BACKUPS, Key="nightly/x", Body=b"two")
    versions = admin.list_object_versions(Bucket=BACKUPS, Prefix="nightly/x").get("Versions", [])
    assert len(versions) == 1  # the overwrite destroyed the first backup


def _no_object_lock(sbx: Sandbox) -> None:
    admin = sbx.s3_client("admin")
    assert admin.get_bucket_versioning(Bucket=BACKUPS)["Status"] == "Enabled"
    try:
        cfg = admin.get_object_lock_configuration(Bucket=BACKUPS).get("ObjectLockConfiguration", {})
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ObjectLockConfigurationNotFoundError"
    else:
        assert cfg.get("ObjectLockEnabled") != "Enabled"


def _runtime_reads(sbx: Sandbox) -> None:
    sbx.s3_client("backup-writer").put_object(Bucket=BACKUPS, Key="nightly/secret.dump", Body=b"dump")
    runtime = sbx.s3_client("runtime")
    assert runtime.get_object(Bucket=BACKUPS, Key="nightly/secret.dump")["Body"].read() == b"dump"
    assert runtime.list_objects_v2(Bucket=BACKUPS)["KeyCount"] >= 1


def _writer_deletes(sbx: Sandbox) -> None:
    writer = sbx.s3_client("backup-writer")
    vid = writer.put_object(Bucket=BACKUPS, Key="nightly/doomed.dump", Body=b"dump")["VersionId"]
    writer.delete_object(Bucket=BACKUPS, Key="nightly/doomed.dump", VersionId=vid, BypassGovernanceRetention=True)
    versions = sbx.s3_client("admin").list_object_versions(Bucket=BACKUPS, Prefix="nightly/doomed.dump")
    assert not versions.get("Versions")


def _bucket_is_app_bucket(sbx: Sandbox) -> None:
    inv = sbx.inventory()
    assert BACKUPS in [b.name for b in inv.app_buckets]
    assert inv.backup_bucket.name == BACKUPS


CASES: dict[str, Callable[[Sandbox], None]] = {
    "backup-versioning-off": _versioning_off,
    "backup-no-object-lock": _no_object_lock,
    "runtime-reads-backups": _runtime_reads,
    "writer-can-delete-backups": _writer_deletes,
    "backup-bucket-is-app-bucket": _bucket_is_app_bucket,
}


@pytest.mark.parametrize("fault", sorted(CASES))
def test_fault_produces_its_misconfiguration(fault: str, sandbox_factory: Callable[..., object]) -> None:
    with sandbox_factory(faults=[fault], components=["s3"]) as sbx:  # type: ignore[attr-defined]
        assert sbx.faults == {fault}
        CASES[fault](sbx)


#: on the healthy twin, the operation IAM refuses in a case, and how (the other cases fail an assertion)
REFUSED_ON_HEALTHY_TWIN: dict[str, tuple[str, str]] = {
    "runtime-reads-backups": ("GetObject", "AccessDenied"),
    "writer-can-delete-backups": ("DeleteObject", "AccessDenied"),
}


@pytest.mark.parametrize("fault", sorted(CASES))
def test_healthy_twin_does_not_have_the_misconfiguration(fault: str, sandbox: Sandbox) -> None:
    if fault in REFUSED_ON_HEALTHY_TWIN:  # refused by IAM, not by broken credentials or a missing bucket
        with pytest.raises(ClientError) as err:
            CASES[fault](sandbox)
        refused = (err.value.operation_name, err.value.response["Error"]["Code"])
        assert refused == REFUSED_ON_HEALTHY_TWIN[fault]
    else:
        with pytest.raises(AssertionError):
            CASES[fault](sandbox)


def test_every_s3_fault_is_in_the_catalogue_and_in_up_help() -> None:
    from runbooks.cli.main import app

    cat = fault_catalogue.catalogue()
    assert set(CASES) <= set(cat)
    out = CliRunner().invoke(app, ["sandbox", "up", "--help"], terminal_width=200)
    assert out.exit_code == 0
    for name in cat:
        assert name in out.output


def test_unknown_fault_is_refused_with_the_list() -> None:
    from runbooks.cli.main import app

    with pytest.raises(fault_catalogue.UnknownFault) as err:
        fault_catalogue.validate(["backup-versioning-off", "no-such-fault"])
    assert "no-such-fault" in str(err.value) and "backup-versioning-off" in str(err.value)
    out = CliRunner().invoke(app, ["sandbox", "up", "--fault", "no-such-fault", "--root", "unused"])
    assert out.exit_code == 1
    assert "runtime-reads-backups" in out.output
