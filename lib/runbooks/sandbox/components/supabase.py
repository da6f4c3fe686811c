"""The supabase component: the Supabase twin (Management API + project API) on the twin's Postgres.

Start: a project ref (20 lowercase letters) and the project's facts go to ``<root>/supabase/project.json``,
the Management API access token to the secret ``supabase_access_token``; then the twin process
``python -m runbooks.sandbox.emulators.supabase`` starts. The overlay gets ``endpoints.supabase_api``,
``endpoints.supabase_project`` (the same base URL) and ``supabase_project_ref``.

Provision: the backup bucket receives "last night's" backup, taken by the real nightly-backup pipeline
with the backup-writer credential, so that a fresh twin passes verify-backup-posture and can be drilled.
Faults shape that backup: ``backup-stale`` dates it three days back; ``backup-corrupt`` stores a version
whose bytes differ from the checksum its sidecar records.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
import yaml

from runbooks.paths import inventory_dir
from runbooks.sandbox.component import (
    Catcher,
    Component,
    ComponentState,
    FaultDeclaration,
    FaultSpec,
    SandboxContext,
    dump_json,
    platform_fault,
)

NAME = "supabase"
TOKEN_SECRET = "supabase_access_token"
STALE_BY = timedelta(days=3)
FAULTS: dict[str, FaultDeclaration] = {
    "backup-stale": FaultSpec(
        "the latest backup in the backup bucket is three days old (older than the policy allows)",
        (Catcher("verify-backup-posture", checks=("backup.freshness",)),),
    ),
    "backup-corrupt": FaultSpec(
        "the latest backup's stored bytes do not match the checksum recorded in its sidecar",
        (Catcher("verify-backup-posture", checks=("backup.checksum",)),),
    ),
    "pitr-disabled": FaultSpec(
        "the Supabase project has point-in-time recovery disabled (restore-pitr is refused)",
        (Catcher("restore-pitr", refusal="point-in-time recovery is disabled"),),
    ),
    "pitr-window-short": platform_fault(
        "the project's PITR add-on keeps 7 days, less than the inventory's pitr_days", "supabase.pitr"
    ),
    "ssl-not-enforced": platform_fault("the project does not enforce SSL on database connections", "supabase.ssl"),
    "network-restrictions-drift": platform_fault(
        "the project's network restrictions allow a CIDR the inventory does not list", "supabase.network"
    ),
    "auth-token-lifetime-long": platform_fault(
        "the auth service issues access tokens valid for a day (jwt_exp 86400)", "supabase.access_token_lifetime"
    ),
    "signing-key-legacy": platform_fault(
        "the project signs with its legacy HS256 JWT secret (no asymmetric key in use)", "supabase.signing_key"
    ),
}


def new_ref() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


def _inventory_raw() -> dict[str, Any]:
    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text())
    return data if isinstance(data, dict) else {}


class SupabaseComponent(Component):
    name: ClassVar[str] = NAME
    depends_on: ClassVar[tuple[str, ...]] = ("postgres", "s3")
    faults: ClassVar[Mapping[str, FaultDeclaration]] = FAULTS

    def start(self, ctx: SandboxContext) -> ComponentState:
        state_dir = ctx.dir(NAME)
        project_file = state_dir / "project.json"
        if project_file.is_file():
            project = json.loads(project_file.read_text())
        else:
            pg = ctx.components["postgres"].extra if "postgres" in ctx.components else {}
            project = {
                "ref": new_ref(),
                "name": "spectral-sandbox",
                "organization_slug": "spectral",
                "region": "us-west-2",
                "created_at": datetime.now(UTC).isoformat(),
                "db_host": pg.get("host", ctx.host),
                "db_version": pg.get("version", ""),
            }
            dump_json(project_file, project)
        if not (ctx.secrets_dir / TOKEN_SECRET).is_file():
            ctx.write_secret(TOKEN_SECRET, "sbp_" + secrets.token_hex(20))
        pid, address = ctx.spawn_emulator(NAME, "runbooks.sandbox.emulators.supabase", FAULTS)
        ctx.merge_overlay(
            {
                "endpoints": {"supabase_api": address, "supabase_project": address},
                "supabase_project_ref": project["ref"],
            }
        )
        return ComponentState(NAME, address, [pid], {"project_ref": project["ref"], "api": address})

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        ref = state.extra["project_ref"]
        try:
            r = httpx.get(
                f"{state.address}/v1/projects/{ref}",
                timeout=2.0,
                headers={"Authorization": f"Bearer {ctx.read_secret(TOKEN_SECRET)}"},
            )
        except httpx.HTTPError as e:
            return False, f"not answering: {type(e).__name__}"
        if r.status_code != 200:
            return False, f"GET /v1/projects/{ref}: HTTP {r.status_code}"
        return True, f"project {ref} {r.json().get('status')}"

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        if "backup" in ctx.overlay and "s3" in ctx.overlay.get("endpoints", {}):
            state.extra["seeded_backup"] = seed_backup(ctx)


def seed_backup(ctx: SandboxContext) -> str:
    """Last night's backup, through the real pipeline; shaped by the backup-stale / backup-corrupt faults."""
    from runbooks.procedures.backup import run_backup
    from runbooks.providers.postgres import Postgres
    from runbooks.providers.s3 import S3

    inv = _inventory_raw()
    bucket = next(b["name"] for b in inv["buckets"] if b["role"] == "backups")
    prefix = inv["backup"].get("prefix", "nightly/")
    endpoints = ctx.overlay["endpoints"]
    s3 = S3(
        access_key_id=ctx.read_secret("backup_aws_access_key_id"),
        secret_access_key=ctx.read_secret("backup_aws_secret_access_key"),
        endpoint_url=endpoints["s3"],
        region=endpoints.get("s3_region", "us-east-1"),
        label="backup-writer",
    )
    shift = STALE_BY if ctx.fault("backup-stale") else timedelta(minutes=5)
    result = run_backup(
        Postgres(ctx.read_secret("database_url")),
        s3,
        bucket=bucket,
        prefix=prefix,
        recipient=ctx.overlay["backup"]["recipient"],
        clock=lambda: datetime.now(UTC) - shift,
    )
    if ctx.fault("backup-corrupt"):
        # the twin's builder (admin) stores a damaged copy as the newest version; the sidecar points at it
        admin = S3(
            access_key_id=ctx.read_secret("admin_aws_access_key_id"),
            secret_access_key=ctx.read_secret("admin_aws_secret_access_key"),
            endpoint_url=endpoints["s3"],
            region=endpoints.get("s3_region", "us-east-1"),
            label="admin",
        )
        with closing(admin.open(bucket, result.key, result.version_id)) as body:
            data = bytearray(body.read())
        data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle of the ciphertext
        manifest = result.manifest()
        manifest["object"]["version_id"] = admin.put_bytes(bucket, result.key, bytes(data))
        admin.put_json(bucket, result.manifest_key, manifest)  # still records the original sha256 and size
    return result.key
