"""The Supabase twin's project/backups API against the Management API's OpenAPI document.

Responses of the twin (through our client) and the request bodies our client sends are validated with
``openapi-schema-validator`` against the schemas the document declares for each operation. Nothing here
restores: the real point-in-time recoveries are in ``tests/e2e/test_data_pitr.py``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

from runbooks.providers.base import ProviderError
from runbooks.providers.supabase import HEALTH_SERVICES, SupabaseManagement
from runbooks.sandbox.fixture import Sandbox
from runbooks.state.backups import MANIFEST_FORMAT

pytestmark = pytest.mark.sandbox
SPEC = Path(__file__).resolve().parents[1] / "data" / "supabase-management-api.openapi.json"  # tests/data/README.md
BACKUPS = "/v1/projects/{ref}/database/backups"


@cache
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text()))


def _validate(schema: dict[str, Any], instance: Any) -> None:
    OAS30Validator({**schema, "components": spec()["components"]}).validate(instance)


def response_ok(path: str, method: str, status: str, instance: Any) -> None:
    op = spec()["paths"][path][method]
    _validate(op["responses"][status]["content"]["application/json"]["schema"], instance)


def request_ok(path: str, method: str, instance: Any) -> None:
    op = spec()["paths"][path][method]
    _validate(op["requestBody"]["content"]["application/json"]["schema"], instance)


@pytest.fixture(scope="module")
def sb(sandbox: Sandbox) -> SupabaseManagement:
    return SupabaseManagement.from_environment(sandbox.inventory())


def test_project_ref_and_project_shape(sb: SupabaseManagement) -> None:
    assert re.fullmatch(r"[a-z]{20}", sb.project_ref)
    project = sb.project()
    response_ok("/v1/projects/{ref}", "get", "200", project)
    assert project["ref"] == sb.project_ref and project["status"] == "ACTIVE_HEALTHY"


def test_services_health_shape_and_real_db_check(sb: SupabaseManagement) -> None:
    health = sb.services_health()
    response_ok("/v1/projects/{ref}/health", "get", "200", health)
    assert [h["name"] for h in health] == list(HEALTH_SERVICES)
    assert all(h["status"] == "ACTIVE_HEALTHY" and h["healthy"] for h in health)


def test_unknown_service_is_refused(sb: SupabaseManagement) -> None:
    with pytest.raises(ProviderError, match="HTTP 400"):
        sb.services_health(["db", "mainframe"])


def test_backups_shape_and_pitr_window(sb: SupabaseManagement) -> None:
    body = sb.list_backups()
    response_ok(BACKUPS, "get", "200", body)
    assert body["pitr_enabled"] is True and body["backups"][0]["is_physical_backup"] is True
    w = sb.pitr_window()
    assert w.enabled and w.earliest is not None and w.latest is not None and w.earliest <= w.latest


def test_restore_point_round_trip(sb: SupabaseManagement) -> None:
    request_ok(BACKUPS + "/restore-point", "post", {"name": "unit-rp-1"})
    created = sb.create_restore_point("unit-rp-1")
    response_ok(BACKUPS + "/restore-point", "post", "201", created)
    assert created["status"] == "AVAILABLE" and created["completed_on"]
    got = sb.get_restore_point("unit-rp-1")
    response_ok(BACKUPS + "/restore-point", "get", "200", got)
    assert got == created
    with pytest.raises(ProviderError, match="HTTP 404"):
        sb.get_restore_point("never-made")
    with pytest.raises(ProviderError, match="HTTP 400"):
        sb.create_restore_point("x" * 21)  # the API's maxLength


def test_restore_pitr_request_matches_the_spec(sb: SupabaseManagement) -> None:
    method, path, body = sb.restore_pitr_request(1740787200)
    assert (method, path) == ("POST", f"/v1/projects/{sb.project_ref}/database/backups/restore-pitr")
    request_ok(BACKUPS + "/restore-pitr", "post", body)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "recovery_time_target_unix"),
        ({"recovery_time_target_unix": "yesterday"}, "integer"),
        ({"recovery_time_target_unix": 1_000_000}, "outside the recovery window"),
        ({"recovery_time_target_unix": 4_000_000_000}, "outside the recovery window"),
    ],
)
def test_restore_pitr_refuses_bad_targets_and_changes_nothing(
    sb: SupabaseManagement, body: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ProviderError, match=needle) as e:
        sb.request(
            "POST",
            f"{sb.project_path}/database/backups/restore-pitr",
            operation="restore-pitr",
            json=body,
            idempotent=False,
        )
    assert e.value.status == 400
    assert sb.project_status() == "ACTIVE_HEALTHY"


def test_management_api_needs_the_token_and_the_right_ref(sb: SupabaseManagement, sandbox: Sandbox) -> None:
    base = sandbox.inventory().endpoints.supabase_api
    r = httpx.get(f"{base}/v1/projects/{sb.project_ref}/database/backups", timeout=5)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    other = SupabaseManagement(base, sandbox.secret("supabase_access_token"), "zzzzzzzzzzzzzzzzzzzz")
    with pytest.raises(ProviderError, match="HTTP 404"):
        other.list_backups()


def test_the_twin_seeds_last_nights_backup(sandbox: Sandbox) -> None:
    """A fresh twin holds one nightly backup with its sidecar, so posture and drill runbooks have one."""
    env = sandbox.inventory()
    s3 = sandbox.s3_client("drill-reader")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=env.backup_bucket.name, Prefix=env.backup.prefix).get("Contents", [])
    ]
    backups = [k for k in keys if k.endswith(".dump.zst.age")]
    assert backups and backups[0] + ".manifest.json" in keys
    manifest = json.loads(
        s3.get_object(Bucket=env.backup_bucket.name, Key=backups[0] + ".manifest.json")["Body"].read()
    )
    assert manifest["format"] == MANIFEST_FORMAT


def test_the_shape_checks_can_fail() -> None:
    from jsonschema.exceptions import ValidationError

    with pytest.raises(ValidationError):
        response_ok(BACKUPS, "get", "200", {"region": "x", "walg_enabled": True, "backups": []})
    with pytest.raises(ValidationError):
        request_ok(BACKUPS + "/restore-pitr", "post", {"recovery_time_target_unix": -1})
