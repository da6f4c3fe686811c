"""config_placement checks: every check's pass and fail path, against a fake Render workspace."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from runbooks.checks.base import CheckResult, Status, run_checks
from runbooks.checks.config_placement import build_checks, generation_of_image
from runbooks.inventory.loader import load
from runbooks.inventory.models import Environment
from runbooks.secrets import fingerprint

GEN = "2026.11.3"


@dataclass
class Svc:
    id: str
    name: str


@dataclass
class Group:
    id: str
    name: str
    env: dict[str, str]
    service_ids: tuple[str, ...]
    service_names: tuple[str, ...]


@dataclass
class Dep:
    id: str
    status: str
    image_ref: str | None
    commit_id: str | None = None


@dataclass
class FakeRender:
    """A Render workspace laid out as HOSTING.md wants it; tests break one thing at a time."""

    env: Environment
    group_env: dict[str, str] = field(default_factory=dict)
    linked: list[str] = field(default_factory=list)
    service_envs: dict[str, dict[str, str]] = field(default_factory=dict)
    images: dict[str, str | None] = field(default_factory=dict)
    #: services built from the repository: name -> the commit their live deploy built (no image)
    commits: dict[str, str] = field(default_factory=dict)
    running: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def healthy(cls, env: Environment) -> FakeRender:
        keys = {k: f"value-of-{k.lower()}-0123456789" for k in env.env_groups[0].keys}
        r = cls(env, group_env=dict(keys), linked=[s.name for s in env.services])
        for s in env.services:
            r.service_envs[s.name] = {"SPECTRAL_GENERATION": GEN, **s.code_coupled}
            r.images[s.name] = f"registry.example/spectral:{GEN}"
            r.running[s.name] = {
                "generation": GEN,
                "keys": {k: fingerprint(v) for k, v in keys.items()},
                "healthy": True,
            }
        return r

    def env_group(self, name: str) -> Group:
        ids = tuple(f"srv-{n}" for n in self.linked)
        return Group("evg-1", name, dict(self.group_env), ids, tuple(self.linked))

    def services(self) -> list[Svc]:
        return [Svc(f"srv-{s.name}", s.name) for s in self.env.services]

    def service_env(self, service_id: str) -> dict[str, str]:
        return dict(self.service_envs[service_id.removeprefix("srv-")])

    def live_deploy(self, service_id: str) -> Dep | None:
        name = service_id.removeprefix("srv-")
        if name in self.commits:
            return Dep("dep-1", "live", None, self.commits[name])
        ref = self.images[name]
        return None if ref is None else Dep("dep-1", "live", ref)

    def health(self, service: Svc) -> tuple[int, dict[str, Any]]:
        body = self.running.get(service.name)
        return (200, copy.deepcopy(body)) if body is not None else (0, {"error": "ConnectError"})


@pytest.fixture(scope="module")
def env() -> Environment:
    return load("production")


def results(env: Environment, render: FakeRender) -> list[CheckResult]:
    return run_checks(build_checks(env, render), max_workers=1)


def failing(rs: list[CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.subject) for r in rs if r.status is Status.FAIL]


def test_a_correct_workspace_passes_every_check(env: Environment) -> None:
    rs = results(env, FakeRender.healthy(env))
    assert rs and all(r.status is Status.PASS for r in rs), [r for r in rs if r.status is not Status.PASS]
    assert {r.check for r in rs} == {
        "config.key_in_group",
        "config.group_has_no_code_coupled",
        "config.service_linked",
        "config.service_has_no_rotating_key",
        "config.code_coupled_on_service",
        "config.generation_matches_deploy",
        "config.service_runs_current_keys",
        "config.generation_consistent",
        "config.rotation_complete",
    }


def test_no_value_in_evidence(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.service_envs["api"]["SUPABASE_SECRET_KEY"] = r.group_env["SUPABASE_SECRET_KEY"]
    for res in results(env, r):
        for value in r.group_env.values():
            assert value not in res.evidence + res.remediation


def test_missing_key_in_group_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    del r.group_env["OAUTH_CLIENT_SECRET"]
    group = env.env_groups[0].name
    assert ("config.key_in_group", f"{group}:OAUTH_CLIENT_SECRET") in failing(results(env, r))


def test_code_coupled_value_in_group_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.group_env["SPECTRAL_GENERATION"] = GEN
    rs = results(env, r)
    bad = [x for x in rs if x.check == "config.group_has_no_code_coupled" and x.status is Status.FAIL]
    assert [x.subject for x in bad] == [f"{env.env_groups[0].name}:SPECTRAL_GENERATION"]
    assert "set it on each service" in bad[0].remediation


def test_unlinked_service_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.linked.remove("ops")
    assert ("config.service_linked", f"{env.env_groups[0].name}:ops") in failing(results(env, r))


def test_rotating_key_on_a_service_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.service_envs["api"]["SUPABASE_SECRET_KEY"] = r.group_env["SUPABASE_SECRET_KEY"]
    rs = results(env, r)
    bad = [x for x in rs if x.check == "config.service_has_no_rotating_key" and x.status is Status.FAIL]
    assert [x.subject for x in bad] == ["api:SUPABASE_SECRET_KEY"]
    assert "delete SUPABASE_SECRET_KEY from service api" in bad[0].remediation


def test_code_coupled_value_missing_or_wrong_on_a_service_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    del r.service_envs["worker"]["DRAIN_TIMEOUT_SECONDS"]
    r.service_envs["app"]["HANDLER_CONCURRENCY"] = "999"
    got = failing(results(env, r))
    assert ("config.code_coupled_on_service", "worker:DRAIN_TIMEOUT_SECONDS") in got
    assert ("config.code_coupled_on_service", "app:HANDLER_CONCURRENCY") in got


def test_generation_variable_differing_from_the_running_deploy_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.images["worker"] = "registry.example/spectral:2026.11.2"
    r.running["worker"]["generation"] = "2026.11.2"
    assert failing(results(env, r)) == [("config.generation_matches_deploy", "worker")]


def test_process_reporting_another_generation_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.running["app"]["generation"] = "2026.10.9"
    assert failing(results(env, r)) == [("config.generation_matches_deploy", "app")]


def test_service_without_live_deploy_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.images["ops"] = None
    assert ("config.generation_matches_deploy", "ops") in failing(results(env, r))


def test_services_on_different_generations_warn(env: Environment) -> None:
    r = FakeRender.healthy(env)
    for name in ("api",):
        r.service_envs[name]["SPECTRAL_GENERATION"] = "2026.11.4"
        r.images[name] = "registry.example/spectral:2026.11.4"
        r.running[name]["generation"] = "2026.11.4"
    rs = results(env, r)
    warn = [x for x in rs if x.status is Status.WARN]
    assert [x.check for x in warn] == ["config.generation_consistent"] and not failing(rs)


def test_unfinished_rotations_warn_with_what_to_do(env: Environment) -> None:
    from runbooks.procedures.rotation import STEPS
    from runbooks.state.rotation import KeyRotation

    upto = list(STEPS[: STEPS.index("verify_services") + 1])
    rotations = {
        "OAUTH_CLIENT_SECRET": KeyRotation(
            "OAUTH_CLIENT_SECRET",
            "oauth",
            status="awaiting_manual_revoke",
            completed=upto,
            old_fingerprint="sha256:0ld0ld0ld0ld",
            new_fingerprint="sha256:5ee5ee5ee5ee",
        ),
        "SUPABASE_SECRET_KEY": KeyRotation("SUPABASE_SECRET_KEY", "supabase", completed=["preflight", "issue"]),
        "SUPABASE_PUBLISHABLE_KEY": KeyRotation("SUPABASE_PUBLISHABLE_KEY", "supabase", status="done"),
    }
    rs = run_checks(build_checks(env, FakeRender.healthy(env), rotations), max_workers=1)
    rows = {r.subject: r for r in rs if r.check == "config.rotation_complete"}
    assert set(rows) == {"OAUTH_CLIENT_SECRET", "SUPABASE_SECRET_KEY"}
    assert {r.status for r in rows.values()} == {Status.WARN}
    oauth = rows["OAUTH_CLIENT_SECRET"]
    assert "awaiting_manual_revoke" in oauth.evidence and "sha256:0ld0ld0ld0ld" in oauth.evidence
    assert "identity provider" in oauth.remediation and "manual_revoked=OAUTH_CLIENT_SECRET" in oauth.remediation
    assert "-p keys=SUPABASE_SECRET_KEY" in rows["SUPABASE_SECRET_KEY"].remediation
    assert not failing(rs)  # a WARN: the scheduled audit shows it without failing


def test_service_running_stale_keys_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.group_env["SUPABASE_SECRET_KEY"] = "a-newer-value-0123456789"
    for name in r.running:
        if name != "ops":
            r.running[name]["keys"]["SUPABASE_SECRET_KEY"] = fingerprint(r.group_env["SUPABASE_SECRET_KEY"])
    assert failing(results(env, r)) == [("config.service_runs_current_keys", "ops")]


def test_unreachable_health_endpoint_fails(env: Environment) -> None:
    r = FakeRender.healthy(env)
    del r.running["worker"]
    assert ("config.service_runs_current_keys", "worker") in failing(results(env, r))


def _row(rs: list[CheckResult], check: str, subject: str) -> CheckResult:
    return next(x for x in rs if x.check == check and x.subject == subject)


def test_without_a_health_report_the_generation_is_not_verifiable_never_a_pass(env: Environment) -> None:
    r = FakeRender.healthy(env)
    del r.running["worker"]  # e.g. a worker whose health lines are missing from its log
    row = _row(results(env, r), "config.generation_matches_deploy", "worker")
    assert row.status is Status.WARN and "not verifiable" in row.evidence


def test_a_service_without_the_contract_is_warn_not_verifiable(env: Environment) -> None:
    r = FakeRender.healthy(env)
    r.running["api"] = {"status": "ok"}  # answers, but reports neither generation nor keys
    rs = results(env, r)
    for check in ("config.generation_matches_deploy", "config.service_runs_current_keys"):
        row = _row(rs, check, "api")
        assert row.status is Status.WARN, row
        assert "not verifiable" in row.evidence and "SERVICE_CONTRACT.md" in row.evidence


def test_a_git_built_service_is_checked_from_its_deploys_commit(env: Environment) -> None:
    commit = "3" * 40
    r = FakeRender.healthy(env)
    r.commits["ops"] = commit
    r.running["ops"]["commit"] = commit
    row = _row(results(env, r), "config.generation_matches_deploy", "ops")
    assert row.status is Status.PASS and "commit 333333333333" in row.evidence
    # the process runs another commit than the live deploy built
    r.running["ops"]["commit"] = "4" * 40
    assert _row(results(env, r), "config.generation_matches_deploy", "ops").status is Status.FAIL
    # it runs the commit, but another generation than its variable says
    r.running["ops"].update(commit=commit, generation="2026.11.2")
    assert _row(results(env, r), "config.generation_matches_deploy", "ops").status is Status.FAIL
    # it does not say which commit it runs: not verifiable
    r.running["ops"].update(generation=GEN)
    del r.running["ops"]["commit"]
    row = _row(results(env, r), "config.generation_matches_deploy", "ops")
    assert row.status is Status.WARN and "RENDER_GIT_COMMIT" in row.evidence


@pytest.mark.parametrize(
    ("ref", "gen"),
    [
        ("registry.example/spectral:2026.11.3", "2026.11.3"),
        ("localhost:5000/spectral:42", "42"),
        ("registry.example/spectral", None),
        ("registry.example/spectral@sha256:abcd", None),
        (None, None),
    ],
)
def test_generation_of_image(ref: str | None, gen: str | None) -> None:
    assert generation_of_image(ref) == gen
