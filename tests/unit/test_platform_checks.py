"""platform_posture checks: every check's pass and fail path against fakes, and the Supabase twin's posture
endpoints against the Management API's response schemas (tests/data, copied from the spec)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_schema_validator import OAS30Validator

from runbooks.checks.base import CheckResult, Status, run_checks
from runbooks.checks.platform_posture import build_checks, pitr_days
from runbooks.inventory.loader import load
from runbooks.inventory.models import Environment
from runbooks.providers.render import RenderService
from runbooks.sandbox.emulators.common import EmulatorArgs
from runbooks.sandbox.emulators.supabase.app import create_app

SCHEMAS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "supabase-management-api.posture.json").read_text()
)
REF = "abcdefghijklmnopqrst"


@dataclass
class Group:
    name: str
    service_names: tuple[str, ...]


class FakeRender:
    """A Render workspace exactly as the production inventory describes it; tests break one thing."""

    def __init__(self, env: Environment):
        self.by_name: dict[str, RenderService] = {}
        for name, want in env.platform.render.items():
            job = next((c for c in env.cron_jobs if c.name == name), None)
            command = (
                env.platform.cron_command.format(procedure=job.procedure, environment=env.environment) if job else None
            )
            self.by_name[name] = RenderService(
                id=f"srv-{name}",
                name=name,
                type=want.type,
                url=None,
                health_path=None,
                region=env.region,
                plan=want.plan,
                instances=want.instances if want.type != "cron_job" else None,
                schedule=job.schedule if job else None,
                start_command=command,
            )
        self.links = {g.name: tuple(s.name for s in env.services if s.env_group == g.name) for g in env.env_groups}

    def services(self) -> list[RenderService]:
        return list(self.by_name.values())

    def env_group(self, name: str) -> Group:
        return Group(name, self.links[name])


class FakeSupabase:
    def __init__(self, env: Environment):
        self.region = "us-west-2"
        self.backups: dict[str, Any] = {"pitr_enabled": True}
        self.pitr = f"pitr_{env.pitr_days}"
        self.ssl = True
        self.cidrs = list(env.platform.supabase.allowed_cidrs)
        self.jwt_exp = env.access_token_lifetime_seconds
        self.algorithms = ["ES256"]

    def project(self) -> dict[str, Any]:
        return {"ref": REF, "region": self.region}

    def list_backups(self) -> dict[str, Any]:
        return self.backups

    def addons(self) -> dict[str, Any]:
        selected = [{"type": "pitr", "variant": {"id": self.pitr}}] if self.pitr else []
        return {"selected_addons": selected, "available_addons": []}

    def ssl_enforcement(self) -> dict[str, Any]:
        return {"currentConfig": {"database": self.ssl}, "appliedSuccessfully": True}

    def network_restrictions(self) -> dict[str, Any]:
        v4 = [c for c in self.cidrs if ":" not in c]
        v6 = [c for c in self.cidrs if ":" in c]
        return {"entitlement": "allowed", "config": {"dbAllowedCidrs": v4, "dbAllowedCidrsV6": v6}, "status": "applied"}

    def auth_config(self) -> dict[str, Any]:
        return {"jwt_exp": self.jwt_exp}

    def signing_keys(self) -> list[dict[str, Any]]:
        return [{"id": str(i), "algorithm": a, "status": "in_use"} for i, a in enumerate(self.algorithms)]


@pytest.fixture(scope="module")
def env() -> Environment:
    return load("production")


@dataclass
class World:
    env: Environment
    render: FakeRender
    supabase: FakeSupabase
    vector: str | None


@pytest.fixture
def world(env: Environment) -> World:
    return World(env, FakeRender(env), FakeSupabase(env), env.platform.supabase.vector_version)


def results(w: World) -> list[CheckResult]:
    return run_checks(build_checks(w.env, w.render, w.supabase, lambda name: w.vector), max_workers=1)


def failing(w: World) -> list[tuple[str, str]]:
    return [(r.check, r.subject) for r in results(w) if r.status is not Status.PASS]


def test_the_inventorys_platform_passes_every_check(world: World) -> None:
    rows = results(world)
    assert [r for r in rows if r.status is not Status.PASS] == []
    checks = {r.check for r in rows}
    assert checks == {
        "render.service",
        "render.region",
        "render.env_group_links",
        "render.cron_job",
        "supabase.pitr",
        "supabase.ssl",
        "supabase.network",
        "supabase.access_token_lifetime",
        "supabase.signing_key",
        "supabase.vector",
    }
    # every service and every cron job of the inventory is checked
    assert {r.subject for r in rows if r.check == "render.service"} == {s.name for s in world.env.services}
    assert {r.subject for r in rows if r.check == "render.cron_job"} == {c.name for c in world.env.cron_jobs}
    assert {r.subject for r in rows if r.check == "render.region"} == set(world.env.platform.render)


def test_a_missing_service_or_cron_job_fails(world: World) -> None:
    del world.render.by_name["worker"], world.render.by_name["restore-drill"]
    # one row each, not one per check that looks at them
    assert failing(world) == [("render.service", "worker"), ("render.cron_job", "restore-drill")]


def test_type_plan_and_instances_are_compared(world: World) -> None:
    r = world.render.by_name
    r["worker"] = replace(r["worker"], plan="standard")
    r["app"] = replace(r["app"], instances=1)
    r["api"] = replace(r["api"], type="private_service")
    rows = {(x.check, x.subject): x for x in results(world) if x.status is Status.FAIL}
    assert set(rows) == {("render.service", n) for n in ("worker", "app", "api")}
    assert "plan standard (inventory: pro)" in rows[("render.service", "worker")].evidence
    assert rows[("render.service", "app")].remediation.startswith("set app to type web_service, plan standard")


def test_a_service_or_cron_job_in_another_region_fails(world: World) -> None:
    r = world.render.by_name
    r["api"] = replace(r["api"], region="frankfurt")
    r["nightly-backup"] = replace(r["nightly-backup"], region="ohio")
    assert failing(world) == [("render.region", "api"), ("render.region", "nightly-backup")]


def test_every_service_fails_when_the_database_is_elsewhere(world: World) -> None:
    world.supabase.region = "eu-central-1"
    bad = failing(world)
    assert bad and all(check == "render.region" for check, _ in bad)
    assert len(bad) == len(world.env.platform.render)


def test_env_group_links_must_match(world: World) -> None:
    group = world.env.env_groups[0].name
    world.render.links[group] = ("app", "api", "ops", "nightly-backup")  # worker unlinked, a cron job linked
    rows = [x for x in results(world) if x.status is Status.FAIL]
    assert [(x.check, x.subject) for x in rows] == [("render.env_group_links", group)]
    assert "not linked: worker" in rows[0].evidence and "not in the inventory: nightly-backup" in rows[0].evidence


def test_cron_schedule_and_command_are_compared(world: World) -> None:
    r = world.render.by_name
    r["check-dns-posture"] = replace(r["check-dns-posture"], schedule="0 * * * *")
    r["nightly-backup"] = replace(r["nightly-backup"], start_command="runbooks run nightly-backup")
    r["restore-drill"] = replace(r["restore-drill"], plan="starter")
    assert failing(world) == [
        ("render.cron_job", "nightly-backup"),
        ("render.cron_job", "restore-drill"),
        ("render.cron_job", "check-dns-posture"),
    ]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda s: setattr(s, "pitr", "pitr_7") or setattr(s, "backups", {"pitr_enabled": True}), None),
        (lambda s: setattr(s, "backups", {"pitr_enabled": False}), "supabase.pitr"),
        (lambda s: setattr(s, "pitr", None), "supabase.pitr"),
        (lambda s: setattr(s, "ssl", False), "supabase.ssl"),
        (lambda s: s.cidrs.append("10.0.0.0/8"), "supabase.network"),
        (lambda s: setattr(s, "jwt_exp", 86400), "supabase.access_token_lifetime"),
        (lambda s: setattr(s, "algorithms", ["HS256"]), "supabase.signing_key"),
        (lambda s: setattr(s, "algorithms", []), "supabase.signing_key"),
    ],
)
def test_each_supabase_setting_fails_its_check(world: World, change: Any, check: str | None) -> None:
    change(world.supabase)
    assert failing(world) == ([] if check is None else [(check, world.env.supabase_project_ref)])


def test_a_pitr_window_shorter_than_the_inventory_fails(world: World) -> None:
    w = replace(world, env=world.env.model_copy(update={"pitr_days": 14}))
    row = next(r for r in results(w) if r.check == "supabase.pitr")
    assert row.status is Status.FAIL and "7 days" in row.evidence and "pitr_14" in row.remediation


@pytest.mark.parametrize("version", [None, "0.7.4"])
def test_vector_missing_or_at_another_version_fails(world: World, version: str | None) -> None:
    world.vector = version
    rows = [r for r in results(world) if r.status is Status.FAIL]
    assert [r.check for r in rows] == ["supabase.vector"]
    assert (version or "not installed") in rows[0].evidence


def test_a_check_that_cannot_read_its_fact_is_a_fail_row(world: World) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("supabase: get SSL enforcement failed (HTTP 403)")

    world.supabase.ssl_enforcement = broken  # type: ignore[method-assign]
    row = next(r for r in results(world) if r.check == "supabase.ssl")
    assert row.status is Status.FAIL and "HTTP 403" in row.evidence


def test_pitr_days_reads_the_variant() -> None:
    assert pitr_days({"selected_addons": [{"type": "ipv4", "variant": {"id": "ipv4_default"}}]}) is None
    assert pitr_days({"selected_addons": [{"type": "pitr", "variant": {"id": "pitr_28"}}]}) == 28


# -- the Supabase twin's endpoints, against the Management API's response schemas -----------------------
@pytest.fixture(
    params=[(), ("pitr-window-short", "ssl-not-enforced", "network-restrictions-drift", "signing-key-legacy")]
)
def twin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, frozenset[str]]]:
    faults = frozenset(request.param)
    (tmp_path / "secrets").mkdir()
    token = "sbp_" + secrets.token_hex(20)
    (tmp_path / "secrets" / "supabase_access_token").write_text(token)
    state = tmp_path / "supabase"
    state.mkdir()
    (state / "project.json").write_text(json.dumps({"ref": REF, "region": "us-west-2"}))
    app = create_app(EmulatorArgs(tmp_path, state, "127.0.0.1", 0, faults))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, faults


@pytest.mark.parametrize("path", sorted(set(SCHEMAS["responses"]) - {"/v1/projects/{ref}/database/backups"}))
def test_twin_answers_as_the_management_api_declares(twin: tuple[TestClient, frozenset[str]], path: str) -> None:
    client, _ = twin
    r = client.get(path.replace("{ref}", REF))
    assert r.status_code == 200, r.text
    OAS30Validator(SCHEMAS["responses"][path]).validate(r.json())


def test_twin_faults_shape_the_answers(twin: tuple[TestClient, frozenset[str]]) -> None:
    client, faults = twin
    addons = client.get(f"/v1/projects/{REF}/billing/addons").json()
    ssl = client.get(f"/v1/projects/{REF}/ssl-enforcement").json()["currentConfig"]["database"]
    cidrs = client.get(f"/v1/projects/{REF}/network-restrictions").json()["config"]["dbAllowedCidrs"]
    in_use = [
        k["algorithm"]
        for k in client.get(f"/v1/projects/{REF}/config/auth/signing-keys").json()["keys"]
        if k["status"] == "in_use"
    ]
    if faults:
        assert pitr_days(addons) == 7 and ssl is False and "10.0.0.0/8" in cidrs and in_use == ["HS256"]
    else:  # the sandbox inventory's 14 days, SSL enforced, its CIDRs
        assert pitr_days(addons) == 14 and ssl is True and cidrs == ["0.0.0.0/0"] and in_use == ["ES256"]
    assert client.get(f"/v1/projects/{REF}/ssl-enforcement", headers={"Authorization": "Bearer x"}).status_code == 401
