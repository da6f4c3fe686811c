"""rotate-keys' preflight and the service contract: a service whose health report lacks the contract's
fields cannot prove it runs a new key, so the rotation does not start (no false "verified")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbooks.archive.objects import LocalObjects
from runbooks.inventory.loader import load
from runbooks.procedures.rotation import KeyRotator, RotationStore
from runbooks.providers.render import RenderService
from runbooks.secrets import fingerprint

VALUE = "value-of-the-current-secret-key-0123"


@dataclass
class Group:
    id: str
    name: str
    env: dict[str, str]
    service_names: tuple[str, ...]


class FakeRender:
    def __init__(self, names: list[str], reports: dict[str, tuple[int, dict[str, Any]]]):
        self.names, self.reports = names, reports

    def env_group(self, name: str) -> Group:
        return Group("evg-1", name, {"SUPABASE_SECRET_KEY": VALUE}, tuple(self.names))

    def services(self) -> list[RenderService]:
        return [RenderService(f"srv-{n}", n, "web_service", f"http://{n}", "/healthz") for n in self.names]

    def service_env(self, service_id: str) -> dict[str, str]:
        return {}

    def health(self, service: RenderService) -> tuple[int, dict[str, Any]]:
        return self.reports[service.name]


class Issuer:
    def identify(self, current: str) -> tuple[bool, str | None, str]:
        return True, "key-1", "the provider knows it"


def preflight(tmp_path: Path, reports: dict[str, tuple[int, dict[str, Any]]]) -> list[Any]:
    env = load("production")
    names = [s.name for s in env.services]
    render = FakeRender(names, reports)
    rotator = KeyRotator(
        env,
        render,  # type: ignore[arg-type]
        {"SUPABASE_SECRET_KEY": Issuer()},  # type: ignore[dict-item]
        RotationStore(LocalObjects(tmp_path), "state.json"),
        log=lambda _: None,
    )
    return rotator.plan([env.config.rotating("SUPABASE_SECRET_KEY")]).preflight


def test_services_that_report_per_the_contract_pass_the_preflight(tmp_path: Path) -> None:
    good = {"generation": "g", "keys": {"SUPABASE_SECRET_KEY": fingerprint(VALUE)}, "healthy": True}
    rows = preflight(tmp_path, {n: (200, dict(good)) for n in ("app", "api", "ops", "worker")})
    assert [r.status for r in rows] == ["done"]


def test_a_service_without_the_contract_fails_the_preflight_saying_why(tmp_path: Path) -> None:
    good = {"generation": "g", "keys": {"SUPABASE_SECRET_KEY": fingerprint(VALUE)}, "healthy": True}
    reports = {n: (200, dict(good)) for n in ("app", "api", "ops")}
    reports["worker"] = (200, {"status": "ok"})  # answers, but reports nothing the rotation can check
    failed = [r for r in preflight(tmp_path, reports) if r.status == "failed"]
    assert failed and "service worker cannot be verified" in failed[0].detail
    assert "SERVICE_CONTRACT.md" in failed[0].detail
