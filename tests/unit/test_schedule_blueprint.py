"""The Render Blueprint of the production schedules: valid against Render's schema, stable, complete."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from runbooks.inventory import load
from runbooks.inventory.models import Credentials, ScheduleOverride, ScheduleSettings
from runbooks.schedule.blueprint import BlueprintError, render_yaml
from runbooks.schedule.catalogue import resolve

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "render.yaml.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_production_blueprint_validates_and_has_one_cron_per_schedule(
    validator: jsonschema.protocols.Validator,
) -> None:
    env = load("production")
    text = render_yaml(env, resolve(env))
    doc = yaml.safe_load(text)
    assert list(validator.iter_errors(doc)) == []
    services = {s["name"]: s for s in doc["services"]}
    assert set(services) == {
        p
        for p in (
            "audit-config-placement",
            "check-dns-posture",
            "nightly-backup",
            "verify-platform-posture",
            "restore-drill",
            "verify-backup-posture",
        )
    }
    nightly = services["nightly-backup"]
    assert nightly["type"] == "cron" and nightly["runtime"] == "python" and nightly["schedule"] == "17 3 * * *"
    assert nightly["region"] == env.region == "oregon"
    assert nightly["startCommand"] == "runbooks run nightly-backup --env production --trigger schedule"
    assert "requirements.txt" in nightly["buildCommand"]
    assert {"fromGroup": "spectral-production-runbooks"} in nightly["envVars"]
    assert {"key": "RUNBOOKS_ARCHIVE", "value": "s3://spectral-production-audit/runs"} in nightly["envVars"]
    (group,) = doc["envVarGroups"]
    keys = {v["key"] for v in group["envVars"]}
    assert {"RENDER_API_KEY", "SPECTRAL_DATABASE_URL", "SPECTRAL_PAGERDUTY_ROUTING_KEY"} <= keys
    assert all(v == {"key": v["key"], "sync": False} for v in group["envVars"])  # no value is ever written


def test_blueprint_is_stable(validator: jsonschema.protocols.Validator) -> None:
    env = load("production")
    assert render_yaml(env, resolve(env)) == render_yaml(load("production"), resolve(load("production")))


def test_overrides_reach_the_blueprint(validator: jsonschema.protocols.Validator) -> None:
    env = load("production")
    settings = env.schedules.model_copy(
        update={
            "overrides": {
                "check-dns-posture": ScheduleOverride(cron="0 * * * *", params={"min_cert_days": "21"}),
                "restore-drill": ScheduleOverride(enabled=False),
            }
        }
    )
    env = env.model_copy(update={"schedules": settings})
    doc = yaml.safe_load(render_yaml(env, resolve(env)))
    assert list(validator.iter_errors(doc)) == []
    services = {s["name"]: s for s in doc["services"]}
    assert "restore-drill" not in services
    dns = services["check-dns-posture"]
    assert dns["schedule"] == "0 * * * *" and dns["startCommand"].endswith("--trigger schedule -p min_cert_days=21")


def test_the_schema_catches_what_render_would_refuse(validator: jsonschema.protocols.Validator) -> None:
    env = load("production")
    doc = yaml.safe_load(render_yaml(env, resolve(env)))
    doc["services"][0]["command"] = "runbooks run x"  # not a Blueprint field (render.yaml's startCommand is)
    assert list(validator.iter_errors(doc))


def test_missing_render_settings_and_non_env_credentials_are_refused() -> None:
    env = load("production")
    bare = env.model_copy(update={"schedules": ScheduleSettings()})
    with pytest.raises(BlueprintError, match=r"schedules\.render is missing"):
        render_yaml(bare, resolve(bare))
    creds = env.credentials.model_copy(update={"render_api_key": "file:/etc/render.key"})
    filed = env.model_copy(update={"credentials": Credentials.model_validate(creds.model_dump())})
    with pytest.raises(BlueprintError, match=r"credentials\.render_api_key is not an env: reference"):
        render_yaml(filed, resolve(filed))
