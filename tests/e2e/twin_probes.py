"""Probes of the twin shared by the e2e tests: its key material, and the S3 faults seen through S3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

from runbooks.providers.render import RenderProvider, public_names
from runbooks.providers.supabase_keys import SupabaseKeys
from runbooks.sandbox.fixture import Sandbox
from runbooks.secrets import fingerprint


def render(sbx: Sandbox) -> RenderProvider:
    """As the runbooks build it: code-coupled values are not registered for redaction (the runner in this
    process scrubs outputs with every value registered here, so registering them would hide them)."""
    env = sbx.inventory()
    return RenderProvider(
        env.endpoints.render_api, sbx.secret("render_api_key"), env.render_owner_id, public=public_names(env)
    )


def supabase(sbx: Sandbox) -> SupabaseKeys:
    env = sbx.inventory()
    return SupabaseKeys(
        env.endpoints.supabase_api,
        sbx.secret("supabase_access_token"),
        env.supabase_project_ref,
        env.endpoints.supabase_project,
    )


def group_env(sbx: Sandbox) -> dict[str, str]:
    env = sbx.inventory()
    return render(sbx).env_group(env.env_groups[0].name).env


def secret_files(sbx: Sandbox) -> set[str]:
    """The twin's credentials as written under <root>/secrets (long enough to be told apart from other text)."""
    values = {p.read_text().strip() for p in (sbx.root / "secrets").iterdir() if p.is_file()}
    return {v for v in values if len(v) >= 16 and not v.startswith("http")}


def twin_secrets(sbx: Sandbox) -> set[str]:
    """Every key value the twin generated that we can see: secret files, group and service env, API keys."""
    values = {p.read_text().strip() for p in (sbx.root / "secrets").iterdir() if p.is_file()}
    values |= set(group_env(sbx).values())
    r = render(sbx)
    for s in r.services():
        values |= set(r.service_env(s.id).values())
    values |= {k.value for k in supabase(sbx).api_keys(reveal=True) if k.value}
    return {v for v in values if len(v) >= 16 and not v.startswith("http")}


def assert_archive_clean(archive: Path, values: set[str]) -> None:
    files = [p for p in archive.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in files)
    for p in files:
        data = p.read_bytes()
        for v in values:
            assert v.encode() not in data, f"a twin secret ({fingerprint(v)}) leaked into {p.relative_to(archive)}"


# -- the S3 faults, seen through S3 ----------------------------------------------------------------------
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


#: S3 fault -> a probe that passes only on a twin with that fault (the misconfiguration itself, seen through S3)
S3_PROBES: dict[str, Callable[[Sandbox], None]] = {
    "backup-versioning-off": _versioning_off,
    "backup-no-object-lock": _no_object_lock,
    "runtime-reads-backups": _runtime_reads,
    "writer-can-delete-backups": _writer_deletes,
    "backup-bucket-is-app-bucket": _bucket_is_app_bucket,
}
