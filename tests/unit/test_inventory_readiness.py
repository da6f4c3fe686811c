"""Inventory readiness (issue 14, item 5): identifiers in the vendors' formats, every secret present,
``runbooks inventory check`` lists what to fill in, and runbooks refuse an unfilled inventory."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyrage import x25519
from typer.testing import CliRunner

from runbooks import inventory
from runbooks.cli.main import build_app
from runbooks.errors import BadParameter
from runbooks.inventory import readiness
from runbooks.inventory.models import Environment, VendorIds

RENDER_NAMES = [
    "app",
    "api",
    "ops",
    "worker",
    "nightly-backup",
    "verify-backup-posture",
    "restore-drill",
    "check-dns-posture",
    "audit-config-placement",
    "verify-platform-posture",
]


def filled(env: Environment) -> Environment:
    """``env`` with every identifier filled in with values in the vendors' formats."""
    ref = "abcdefghijklmnopqrst"
    ids = VendorIds(
        cloudflare_zone_id="0123456789abcdef0123456789abcdef",
        render_services={n: f"{'crn' if i > 3 else 'srv'}-{'d' * 19}{i}" for i, n in enumerate(RENDER_NAMES)},
    )
    return env.model_copy(
        update={
            "supabase_project_ref": ref,
            "cloudflare_account_id": "fedcba9876543210fedcba9876543210",
            "render_owner_id": "tea-" + "c" * 20,
            "vendor_ids": ids,
            "endpoints": env.endpoints.model_copy(update={"supabase_project": f"https://{ref}.supabase.co"}),
            "backup": env.backup.model_copy(update={"recipient": str(x25519.Identity.generate().to_public())}),
        }
    )


def _clear_refs(monkeypatch: pytest.MonkeyPatch, env: Environment) -> list[str]:
    names = [ref.split(":", 1)[1] for _, ref in readiness.secret_refs(env) if ref.startswith("env:")]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    return names


def test_production_placeholders_are_every_one_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    env = inventory.load("production")
    _clear_refs(monkeypatch, env)
    fields = {p.field for p in readiness.check(env)}
    expected_ids = {
        "supabase_project_ref",
        "cloudflare_account_id",
        "vendor_ids.cloudflare_zone_id",
        "render_owner_id",
        "backup.recipient",
        *(f"vendor_ids.render_services.{n}" for n in RENDER_NAMES),
    }
    expected_secrets = {field for field, _ in readiness.secret_refs(env)}
    assert "credentials.database_url" in expected_secrets and len(expected_secrets) == 12
    assert fields == expected_ids | expected_secrets


def test_a_filled_inventory_with_its_secrets_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    env = filled(inventory.load("production"))
    for name in _clear_refs(monkeypatch, env):
        monkeypatch.setenv(name, "value-of-" + name.lower())
    assert readiness.check(env) == []
    assert "is ready" in readiness.report(env, [])
    assert readiness.require_ready(env) is env


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"supabase_project_ref": "abcdefghijklmnopqrs"}, "supabase_project_ref"),  # 19 letters
        ({"supabase_project_ref": "abcdefghijklmnopqrs1"}, "supabase_project_ref"),  # a digit
        ({"cloudflare_account_id": "0123456789ABCDEF0123456789ABCDEF"}, "cloudflare_account_id"),  # upper case
        ({"render_owner_id": "srv-" + "c" * 20}, "render_owner_id"),  # a service id, not a workspace
        ({"render_owner_id": "tea-" + "c" * 19}, "render_owner_id"),
    ],
)
def test_each_identifier_is_held_to_its_vendors_format(update: dict[str, Any], field: str) -> None:
    env = filled(inventory.load("production")).model_copy(update=update)
    assert field in {p.field for p in readiness.identifier_problems(env)}


def test_project_url_must_be_the_refs_and_the_recipient_must_parse() -> None:
    env = filled(inventory.load("production"))
    env = env.model_copy(
        update={
            "endpoints": env.endpoints.model_copy(update={"supabase_project": "https://other.supabase.co"}),
            "backup": env.backup.model_copy(update={"recipient": "age1" + "q" * 57}),
        }
    )
    fields = {p.field for p in readiness.identifier_problems(env)}
    assert fields == {"endpoints.supabase_project", "backup.recipient"}


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("spectral-backups", True),
        ("spectral.audit.v2", True),
        ("ab", False),
        ("Spectral-Backups", False),
        ("spectral..backups", False),
        ("192.168.1.10", False),
        ("-spectral", False),
        ("xn--spectral", False),
    ],
)
def test_bucket_names_follow_s3_rules(name: str, ok: bool) -> None:
    assert (readiness.bucket_problem(name) is None) is ok


def test_secret_presence_never_reads_a_value_into_the_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    env = filled(inventory.load("production"))
    names = _clear_refs(monkeypatch, env)
    value = "very-secret-" + "x" * 16
    monkeypatch.setenv(names[0], value)
    problems = readiness.secret_problems(env)
    assert len(problems) == len(names) - 1 and all(p.kind == "secret" for p in problems)
    assert value not in readiness.report(env, problems)
    # file: references: the file and its JSON field must exist
    (tmp_path / "creds.json").write_text(json.dumps({"db": {"url": value}}))
    assert readiness._file_absent(f"{tmp_path}/creds.json#db.url") is None
    why = readiness._file_absent(f"{tmp_path}/creds.json#db.password")
    assert why is not None and "no field" in why and value not in why
    assert "no such file" in (readiness._file_absent(f"{tmp_path}/nope.json") or "")


def test_runbooks_refuse_an_unfilled_inventory_naming_the_environment() -> None:
    with pytest.raises(BadParameter) as e:
        readiness.load_ready("production")
    assert e.value.name == "environment"
    message = str(e.value)
    assert "supabase_project_ref" in message and "runbooks inventory check --env production" in message
    # the sandbox's ids come from the running twin: not refused here
    sandbox = inventory.load("production").model_copy(update={"environment": "sandbox"})
    assert readiness.require_ready(sandbox) is sandbox


def test_cli_lists_every_placeholder_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_refs(monkeypatch, inventory.load("production"))
    result = CliRunner().invoke(build_app(["inventory"]), ["inventory", "check", "--env", "production"])
    assert result.exit_code == 1, result.output
    assert "production: the inventory is not ready" in result.output
    for field in ("supabase_project_ref", "vendor_ids.render_services.worker", "credentials.render_api_key"):
        assert field in result.output
    assert "export RENDER_API_KEY" in result.output
    as_json = CliRunner().invoke(
        build_app(["inventory"]), ["inventory", "check", "--env", "production", "--no-secrets", "--json"]
    )
    rows = json.loads(as_json.output)
    assert as_json.exit_code == 1 and rows and {r["kind"] for r in rows} == {"identifier"}
