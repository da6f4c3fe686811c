"""The Cloudflare provider (official SDK) against the edge twin: records, settings, Pages, tokens, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbooks.providers.base import ProviderError
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("cf"), generated=12) as e:
        yield e


def provider(e: RunningEdge, token: str | None = None) -> CloudflareProvider:
    env = e.environment()
    return CloudflareProvider(
        env.endpoints.cloudflare_api,
        token or e.token,
        account_id=env.cloudflare_account_id,
        zone=env.zone,
        max_retries=0,
    )


def test_from_environment_resolves_the_token_reference(edge: RunningEdge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_SANDBOX", str(edge.root))
    cf = CloudflareProvider.from_environment(edge.environment())
    assert cf.verify_token().status == "active"


def test_list_records_reads_every_page_without_an_extra_request(edge: RunningEdge) -> None:
    seen: list[str] = []
    cf = provider(edge)
    cf._client = cf._client.with_options(
        http_client=httpx.Client(event_hooks={"request": [lambda r: seen.append(str(r.url))]})
    )
    records = cf.list_records(per_page=5)
    assert len(records) == 17 and len({r.id for r in records}) == 17
    assert len([u for u in seen if "dns_records" in u]) == 4  # 17 records, 5 a page: exactly 4 pages


def test_find_get_edit_record(edge: RunningEdge) -> None:
    cf = provider(edge)
    rec = cf.find_record("ops.runspectral.com")
    assert rec is not None and rec.type == "CNAME" and rec.proxied is True
    assert cf.find_record("nope.runspectral.com") is None
    edited = cf.edit_record(rec, content="spectral-ops-2.onrender.com", comment="moved")
    assert (edited.content, edited.proxied, edited.comment, edited.ttl) == (
        "spectral-ops-2.onrender.com",
        True,
        "moved",
        rec.ttl,
    )
    assert cf.get_record(rec.id).content == "spectral-ops-2.onrender.com"
    cf.edit_record(edited, content=rec.content)
    assert cf.list_records(name="ops.runspectral.com", type="CNAME")[0].content == rec.content


def test_settings_and_pages(edge: RunningEdge) -> None:
    cf = provider(edge)
    assert cf.setting("ssl") == "strict"
    assert cf.set_setting("always_use_https", "off") == "off"
    assert cf.setting("always_use_https") == "off"
    cf.set_setting("always_use_https", "on")
    codex = cf.pages_project("spectral-codex")
    assert codex.subdomain == "spectral-codex.pages.dev" and codex.uses_functions
    assert codex.domain_status == {"codex.runspectral.com": "active"}
    assert not cf.pages_project("spectral-docs").uses_functions
    with pytest.raises(ProviderError, match="Project not found") as err:
        cf.pages_project("nope")
    assert err.value.status == 404


def test_ip_ranges_from_the_api(edge: RunningEdge) -> None:
    r = provider(edge).ip_ranges()
    assert r.source == "from /ips" and "104.16.0.0/13" in r.ipv4 and "2606:4700::/32" in r.ipv6


def test_errors_name_the_operation_never_the_token(edge: RunningEdge) -> None:
    bad = provider(edge, "secret-looking-wrong-token")
    with pytest.raises(ProviderError) as err:
        bad.list_records()
    assert err.value.status == 403 and "look up zone runspectral.com" in str(err.value)
    assert "Authentication error" in str(err.value) and "secret-looking-wrong-token" not in str(err.value)
    with pytest.raises(ProviderError, match="verify API token"):
        bad.verify_token()


def test_roll_token(tmp_path: Path) -> None:
    with running_edge(tmp_path) as e:
        cf = provider(e)
        me = cf.verify_token()
        assert {t.name for t in cf.list_tokens()} == {"spectral-runbooks", "spectral-runtime"}
        new = cf.roll_token(me.id)
        assert new != e.token
        with pytest.raises(ProviderError):
            provider(e).verify_token()  # the old value stopped working at once
        assert provider(e, new).verify_token().id == me.id
        with pytest.raises(ProviderError, match="roll API token nope"):
            provider(e, new).roll_token("nope")
