"""Providers as plug-ins: one base built from the typed inventory, a context manager, a registry by name."""

from __future__ import annotations

import pytest

from runbooks import inventory
from runbooks.inventory.models import Environment
from runbooks.providers import registry
from runbooks.providers.base import Provider
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.providers.dns import DnsResolver
from runbooks.providers.postgres import Postgres
from runbooks.providers.render import RenderProvider
from runbooks.providers.s3 import S3
from runbooks.providers.supabase_keys import SupabaseKeys
from runbooks.providers.supabase_platform import SupabasePlatform
from runbooks.providers.tls import TlsClient

DSN = "postgresql://user:pw@localhost:5432/app"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Environment:
    """The production inventory, every secret reference resolving to a harmless value (nothing is called)."""
    monkeypatch.setattr("runbooks.secrets.secret", lambda ref: DSN)
    return inventory.load("production")


def test_the_registry_holds_every_vendor_provider() -> None:
    assert registry.names() == ["cloudflare", "render", "s3", "supabase", "supabase.keys", "supabase.platform"]
    assert registry.get("render") is RenderProvider and registry.get("cloudflare") is CloudflareProvider
    assert registry.get("supabase.keys") is SupabaseKeys and registry.get("supabase.platform") is SupabasePlatform
    assert all(issubclass(registry.get(n), Provider) for n in registry.names())


@pytest.mark.parametrize("name", registry.names())
def test_every_provider_is_built_from_the_inventory_and_closed_by_with(
    name: str, env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = registry.get(name)
    closed: list[str] = []
    original = cls.close

    def close(self: Provider) -> None:
        closed.append(self.name)
        original(self)

    monkeypatch.setattr(cls, "close", close)
    with registry.create(name, env) as provider:
        assert type(provider) is cls and provider.name == name.split(".")[0]
        assert not closed
    assert closed == [provider.name]


def test_the_providers_take_their_endpoints_from_the_inventory(env: Environment) -> None:
    with registry.create("supabase", env) as sb, registry.create("render", env) as render:
        assert str(sb._http.base_url) == env.endpoints.supabase_api.rstrip("/")
        assert isinstance(render, RenderProvider) and render.owner_id == env.render_owner_id
    s3 = S3.from_environment(env)
    assert s3.label == "runtime" and S3.from_environment(env, "s3_drill_reader").label == "drill-reader"


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(registry.UnknownProvider, match="no provider named 'fastly'; known: cloudflare, render"):
        registry.get("fastly")


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'render' is already registered"):
        registry.register(RenderProvider)
    assert registry.get("render") is RenderProvider


def test_a_provider_that_does_not_say_how_it_is_built_is_refused_and_the_base_closes_nothing(env: Environment) -> None:
    class Bare(Provider):
        name = "bare"

    with pytest.raises(NotImplementedError, match="Bare does not say how it is built"):
        Bare.from_environment(env)
    with Bare() as bare:
        assert bare.name == "bare"


def test_the_protocol_clients_are_built_from_the_inventory_but_are_not_providers(env: Environment) -> None:
    clients = [DnsResolver.from_environment(env), TlsClient.from_environment(env), Postgres.from_environment(env)]
    assert [c.name for c in clients] == ["dns", "tls", "postgres"]
    assert not any(isinstance(c, Provider) for c in clients)
    assert clients[2].describe() == "localhost:5432/app"
