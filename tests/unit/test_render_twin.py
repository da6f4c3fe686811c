"""The Render twin through the Render provider (Render's generated client): shapes, auth, env, deploys,
metrics, and each fault of the render component."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_render_harness import KeysTwin, keys_twin

from runbooks.checks.config_placement import generation_of_image
from runbooks.providers.base import ProviderError
from runbooks.providers.render import RenderProvider, public_names
from runbooks.secrets import fingerprint

GROUP = "spectral-sandbox-keys"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeysTwin]:
    with keys_twin(tmp_path_factory.mktemp("render")) as t:
        yield t


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeysTwin]:
    faults = frozenset({"key-on-service", "generation-in-group", "generation-mismatch", "stale-service"})
    with keys_twin(tmp_path_factory.mktemp("render-faulted"), faults) as t:
        yield t


def provider(t: KeysTwin) -> RenderProvider:
    return RenderProvider(t.render_api, t.secret("render_api_key"), t.owner_id)


def test_workspace_matches_the_inventory(twin: KeysTwin) -> None:
    r = provider(twin)
    every = {s.name: s for s in r.services()}
    services = {n: s for n, s in every.items() if s.type != "cron_job"}
    assert sorted(services) == ["api", "app", "ops", "worker"]
    assert services["worker"].type == "background_worker" and services["api"].type == "web_service"
    # as on Render: a background worker has no URL; services carry region, plan and instance count
    assert services["worker"].url is None and services["api"].url
    assert {s.region for s in every.values()} == {"oregon"} and services["worker"].plan == "pro"
    assert services["app"].instances == 2
    # the inventory's cron jobs are Render cron jobs running the runbook on its schedule
    nightly = every["nightly-backup"]
    assert nightly.type == "cron_job" and nightly.schedule == "17 3 * * *"
    assert nightly.start_command == "runbooks run nightly-backup --env sandbox --trigger schedule"
    group = r.env_group(GROUP)
    assert sorted(group.service_names) == ["api", "app", "ops", "worker"]
    assert {"SUPABASE_SECRET_KEY", "SUPABASE_PUBLISHABLE_KEY", "CLOUDFLARE_API_TOKEN", "OAUTH_CLIENT_SECRET"} <= set(
        group.env
    )
    assert group.env["SUPABASE_SECRET_KEY"] == twin.secret("supabase_secret_key")
    own = r.service_env(services["api"].id)
    assert own == {"SPECTRAL_GENERATION": "2026.11.3", "HANDLER_CONCURRENCY": "128", "DRAIN_TIMEOUT_SECONDS": "60"}
    live = r.live_deploy(services["api"].id)
    assert live is not None and generation_of_image(live.image_ref) == "2026.11.3"


def test_a_wrong_api_key_is_refused(twin: KeysTwin) -> None:
    with pytest.raises(ProviderError) as e:
        RenderProvider(twin.render_api, "rnd_wrong_key_000000").services()
    assert e.value.status == 401


def test_unknown_group_and_service_are_404(twin: KeysTwin) -> None:
    r = provider(twin)
    with pytest.raises(ProviderError) as e:
        r.env_group("no-such-group")
    assert e.value.status == 404
    with pytest.raises(ProviderError):
        r.service("no-such-service")


def test_services_report_fingerprints_not_values(twin: KeysTwin) -> None:
    r = provider(twin)
    group = r.env_group(GROUP)
    code, body = r.health(r.service("app"))
    assert code == 200 and body["healthy"] and body["generation"] == "2026.11.3"
    assert body["keys"]["SUPABASE_SECRET_KEY"] == fingerprint(group.env["SUPABASE_SECRET_KEY"])
    text = str(body)
    assert not any(v in text for v in group.env.values() if v.startswith(("sb_", "oauth_", "cfrt_")))


def test_group_change_reaches_a_service_only_through_a_deploy(twin: KeysTwin) -> None:
    r = provider(twin)
    group = r.env_group(GROUP)
    app = r.service("app")
    _, before = r.health(app)
    r.set_group_var(group.id, "OAUTH_CLIENT_SECRET", "oauth_changed_value_0123456789")
    _, unchanged = r.health(app)
    assert unchanged["keys"]["OAUTH_CLIENT_SECRET"] == before["keys"]["OAUTH_CLIENT_SECRET"]
    previous = r.live_deploy(app.id)
    d = r.deploy(app.id)
    assert d.status == "created"
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = r.get_deploy(app.id, d.id).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("live", "update_failed"):
            break
        time.sleep(0.05)
    assert seen[-1] == "live"
    order = ["created", "build_in_progress", "update_in_progress", "live"]
    assert [s for s in order if s in seen] == seen, seen
    assert "update_in_progress" in seen
    assert previous is not None and r.get_deploy(app.id, previous.id).status == "deactivated"
    _, after = r.health(app)
    assert after["pid"] != before["pid"]
    assert after["keys"]["OAUTH_CLIENT_SECRET"] == fingerprint("oauth_changed_value_0123456789")


def test_a_refused_supabase_key_makes_the_service_unhealthy_and_its_deploy_fail(twin: KeysTwin) -> None:
    r = provider(twin)
    group = r.env_group(GROUP)
    ops = r.service("ops")
    good = group.env["SUPABASE_PUBLISHABLE_KEY"]
    r.set_group_var(group.id, "SUPABASE_PUBLISHABLE_KEY", "sb_publishable_not_a_real_key")
    try:
        d = r.wait_deploy(ops.id, r.deploy(ops.id).id, timeout=60)
        assert d.status == "update_failed"
        code, body = r.health(ops)
        assert code == 503 and body["healthy"] is False
        assert body["supabase"]["SUPABASE_PUBLISHABLE_KEY"] == {"ok": False, "detail": "HTTP 401"}
    finally:
        r.set_group_var(group.id, "SUPABASE_PUBLISHABLE_KEY", good)
        assert r.wait_deploy(ops.id, r.deploy(ops.id).id, timeout=60).status == "live"


def test_metrics_series_follow_the_configured_profile(twin: KeysTwin) -> None:
    r = provider(twin)
    worker = r.service("worker")
    limit = r.metric("memory-limit", worker.id)
    assert limit and all(v == 4096 * 1024 * 1024 for _, v in limit)
    httpx.put(
        f"{twin.render.address}/__twin/metrics/{worker.id}",
        json={"memory_fraction": 0.85},
        headers={"Authorization": f"Bearer {twin.secret('render_api_key')}"},
    ).raise_for_status()
    mem = r.metric("memory", worker.id, resolution_seconds=300)
    assert len(mem) >= 10
    assert all(0.75 < v / limit[0][1] <= 1.0 for _, v in mem)
    p95 = r.metric("http-latency", r.service("api").id, quantile=0.95)
    p50 = r.metric("http-latency", r.service("api").id, quantile=0.5)
    assert sum(v for _, v in p95) > sum(v for _, v in p50)
    assert r.metric("cpu", worker.id)


def test_fault_key_on_service(faulted: KeysTwin) -> None:
    r = provider(faulted)
    assert "SUPABASE_SECRET_KEY" in r.service_env(r.service("api").id)
    assert "SUPABASE_SECRET_KEY" not in r.service_env(r.service("app").id)


def test_fault_generation_in_group(faulted: KeysTwin) -> None:
    assert "SPECTRAL_GENERATION" in provider(faulted).env_group(GROUP).env


def test_fault_generation_mismatch(faulted: KeysTwin) -> None:
    r = provider(faulted)
    worker = r.service("worker")
    live = r.live_deploy(worker.id)
    assert live is not None
    assert r.service_env(worker.id)["SPECTRAL_GENERATION"] != generation_of_image(live.image_ref)
    assert r.health(worker)[1]["generation"] == generation_of_image(live.image_ref)


def test_code_coupled_values_stay_readable_and_keys_are_protected(
    faulted: KeysTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only secret values are registered for redaction: the inventory's code-coupled values (the generation
    the audit reports on) are not; rotating keys and names the inventory does not know are."""
    from runbooks import redact

    fresh = redact.Redactor()
    monkeypatch.setattr(redact, "_default", fresh)
    env = faulted.inventory()
    r = RenderProvider(faulted.render_api, faulted.secret("render_api_key"), faulted.owner_id, public=public_names(env))
    assert public_names(env) == {"SPECTRAL_GENERATION", "HANDLER_CONCURRENCY", "DRAIN_TIMEOUT_SECONDS"}
    worker_env = r.service_env(r.service("worker").id)
    group = r.env_group(GROUP)
    assert "SPECTRAL_GENERATION" in group.env  # generation-in-group
    for gen in {worker_env["SPECTRAL_GENERATION"], group.env["SPECTRAL_GENERATION"]}:
        assert fresh.scrub(f"SPECTRAL_GENERATION={gen}") == f"SPECTRAL_GENERATION={gen}"
    api_env = r.service_env(r.service("api").id)
    secret_on_service = api_env["SUPABASE_SECRET_KEY"]  # key-on-service: protected on a service too
    for value in (group.env["SUPABASE_SECRET_KEY"], group.env["OAUTH_CLIENT_SECRET"], secret_on_service):
        assert value not in fresh.scrub(f"value {value}")
    # a name the provider is not told is public stays protected (unknown names are treated as secrets)
    strict = RenderProvider(faulted.render_api, faulted.secret("render_api_key"), faulted.owner_id)
    gen = strict.service_env(r.service("worker").id)["SPECTRAL_GENERATION"]
    assert gen not in fresh.scrub(gen)


def test_fault_stale_service_ignores_deploys(faulted: KeysTwin) -> None:
    r = provider(faulted)
    ops = r.service("ops")
    _, before = r.health(ops)
    assert r.wait_deploy(ops.id, r.deploy(ops.id).id, timeout=30).status == "live"
    _, after = r.health(ops)
    assert after["pid"] == before["pid"] and after["started_at"] == before["started_at"]


def test_component_writes_its_secrets_and_overlay(twin: KeysTwin) -> None:
    root: Path = twin.root
    for name in ("render_api_key", "oauth_next_client_secret"):
        assert (root / "secrets" / name).stat().st_mode & 0o077 == 0
    assert twin.ctx.overlay["endpoints"]["render_api"] == twin.render_api
    assert twin.ctx.overlay["render_owner_id"].startswith("tea-")


def test_unlink_and_link_a_service(twin: KeysTwin) -> None:
    from render.public_api.api.environment_groups import link_service_to_env_group, unlink_service_from_env_group
    from render.public_api.client import AuthenticatedClient

    r = provider(twin)
    group, ops = r.env_group(GROUP), r.service("ops")
    client = AuthenticatedClient(base_url=twin.render_api, token=twin.secret("render_api_key"))
    assert unlink_service_from_env_group.sync_detailed(group.id, ops.id, client=client).status_code == 204
    assert "ops" not in r.env_group(GROUP).service_names
    linked = link_service_to_env_group.sync(group.id, ops.id, client=client)
    assert "ops" in [x.name for x in linked.service_links]  # type: ignore[union-attr]
    assert "ops" in r.env_group(GROUP).service_names
