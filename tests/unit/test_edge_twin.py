"""The edge twin on its own: Cloudflare API (through the official SDK), authoritative DNS, HTTPS, faults."""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudflare
import dns.message
import dns.query
import dns.rcode
import httpx
import pytest

from runbooks.sandbox.component import ComponentState
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge
from runbooks.sandbox.edge.world import PROXY_V4


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("edge")) as e:
        yield e


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    faults = ["api-proxied", "cookie-host-only", "codex-no-function", "cert-expiring", "ssl-flexible"]
    with running_edge(tmp_path_factory.mktemp("edge-faulted"), faults) as e:
        yield e


def sdk(e: RunningEdge, token: str | None = None) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(api_token=token or e.token, base_url=e.state.address, max_retries=0)


def info(page: Any) -> dict[str, Any]:
    """``result_info`` as sent (the SDK's model declares only page and per_page)."""
    assert page.result_info is not None
    return dict(page.result_info.model_dump())


def body(err: cloudflare.APIStatusError) -> dict[str, Any]:
    assert isinstance(err.body, dict)
    return err.body


def setting(c: cloudflare.Cloudflare, zid: str, name: str) -> Any:
    return getattr(c.zones.settings.get(name, zone_id=zid), "value", None)


def zone_id(c: cloudflare.Cloudflare) -> str:
    return next(iter(c.zones.list(name="runspectral.com"))).id


def query(e: RunningEdge, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    host, port = e.overlay["endpoints"]["dns_resolver"].rsplit(":", 1)
    q = dns.message.make_query(name, rdtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, host, port=int(port), timeout=3)


def https(
    e: RunningEdge, host: str, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> httpx.Response:
    ctx = ssl.create_default_context(cafile=e.overlay["endpoints"]["ca_bundle"])
    addr = e.overlay["endpoints"]["https_overrides"][host]
    with httpx.Client(verify=ctx) as c:
        return c.request(
            method,
            f"https://{addr}{path}",
            headers={"Host": host, **(headers or {})},
            extensions={"sni_hostname": host},
        )


def test_overlay_and_secret_published(edge: RunningEdge) -> None:
    ep = edge.overlay["endpoints"]
    assert ep["cloudflare_api"].startswith("http://127.0.0.1:") and ep["cloudflare_api"].endswith("/client/v4")
    assert ep["dns_resolver"].startswith("127.0.0.1:")
    assert Path(ep["ca_bundle"]).is_file()
    assert set(ep["https_overrides"]) >= {
        "app.runspectral.com",
        "api.runspectral.com",
        "codex.runspectral.com",
        "spectral-app-green.onrender.com",
    }
    assert len(edge.overlay["cloudflare_account_id"]) == 32
    assert (edge.root / "secrets" / "cloudflare_api_token").stat().st_mode & 0o077 == 0
    env = edge.environment()
    assert env.endpoints.dns_resolver == ep["dns_resolver"]
    # the token is never written into the endpoints file or the component state
    assert edge.token not in (edge.root / "endpoints.json").read_text()
    assert edge.token not in json.dumps(edge.state.extra)


def test_sdk_lists_records_with_pagination(edge: RunningEdge) -> None:
    c = sdk(edge)
    zid = zone_id(c)
    page = c.dns.records.list(zone_id=zid, per_page=5)
    assert info(page)["total_count"] == 5 and info(page)["total_pages"] == 1
    assert {r.name for r in c.dns.records.list(zone_id=zid, per_page=5)} == {
        f"{h}.runspectral.com" for h in ("app", "ops", "api", "docs", "codex")
    }
    raw = httpx.get(
        f"{edge.state.address}/zones/{zid}/dns_records",
        params={"per_page": 5, "page": 2},
        headers={"Authorization": f"Bearer {edge.token}"},
    ).json()
    assert raw["success"] and raw["result"] == [] and raw["result_info"]["page"] == 2
    api = list(c.dns.records.list(zone_id=zid, name={"exact": "api.runspectral.com"}))
    assert [(r.type, r.content, r.proxied) for r in api] == [("CNAME", "spectral-api-blue.onrender.com", False)]


def test_pagination_over_many_records(tmp_path: Path) -> None:
    with running_edge(tmp_path, generated=12) as e:
        c = sdk(e)
        zid = zone_id(c)
        first = c.dns.records.list(zone_id=zid, per_page=5)
        assert info(first)["total_count"] == 17 and info(first)["total_pages"] == 4
        assert len(first.result) == 5
        names = [r.name for r in c.dns.records.list(zone_id=zid, per_page=5)]  # the SDK walks all pages
        assert len(names) == len(set(names)) == 17


def test_error_envelopes(edge: RunningEdge) -> None:
    c = sdk(edge)
    zid = zone_id(c)
    with pytest.raises(cloudflare.NotFoundError) as nf:
        c.dns.records.get("0" * 32, zone_id=zid)
    assert nf.value.body == {
        "success": False,
        "errors": [{"code": 81044, "message": "Record does not exist."}],
        "messages": [],
        "result": None,
    }
    with pytest.raises(cloudflare.PermissionDeniedError) as denied:
        list(sdk(edge, "not-a-token").zones.list())
    assert body(denied.value)["errors"][0]["code"] == 10000
    missing = httpx.get(f"{edge.state.address}/zones")
    assert missing.status_code == 400 and missing.json()["success"] is False
    rec = next(iter(c.dns.records.list(zone_id=zid, name={"exact": "api.runspectral.com"})))
    with pytest.raises(cloudflare.BadRequestError) as bad:
        c.dns.records.edit(rec.id, zone_id=zid, name=rec.name, type="CNAME", ttl=1, content="not a host!")
    assert body(bad.value)["errors"][0]["code"] == 9005
    with pytest.raises(cloudflare.BadRequestError):
        c.zones.settings.edit("ssl", zone_id=zid, value="bogus")


def test_settings_pages_tokens_ips(edge: RunningEdge) -> None:
    c = sdk(edge)
    zid = zone_id(c)
    assert setting(c, zid, "ssl") == "strict"
    assert setting(c, zid, "always_use_https") == "on"
    assert setting(c, zid, "min_tls_version") == "1.2"
    aid = edge.overlay["cloudflare_account_id"]
    codex = c.pages.projects.get("spectral-codex", account_id=aid)
    assert codex.latest_deployment is not None and codex.latest_deployment.uses_functions is True
    assert codex.subdomain == "spectral-codex.pages.dev"
    assert [d.status for d in c.pages.projects.domains.list("spectral-codex", account_id=aid)] == ["active"]
    assert {p.name for p in c.pages.projects.list(account_id=aid)} == {"spectral-docs", "spectral-codex"}
    assert getattr(c.user.tokens.verify(), "status", None) == "active"
    assert "104.16.0.0/13" in (getattr(c.ips.list(), "ipv4_cidrs", None) or [])


def test_dns_answers_follow_posture_and_current_records(edge: RunningEdge) -> None:
    app = query(edge, "app.runspectral.com")
    assert app.rcode() == dns.rcode.NOERROR and len(app.answer) == 1
    assert ipaddress.ip_address(app.answer[0][0].address) in PROXY_V4
    api = query(edge, "api.runspectral.com", tcp=True)
    assert [str(rr.name) for rr in api.answer] == ["api.runspectral.com.", "spectral-api-blue.onrender.com."]
    assert query(edge, "nope.runspectral.com").rcode() == dns.rcode.NXDOMAIN
    assert query(edge, "example.org").rcode() == dns.rcode.REFUSED
    # an edit through the API is what the next answer says
    c = sdk(edge)
    zid = zone_id(c)
    rec = next(iter(c.dns.records.list(zone_id=zid, name={"exact": "api.runspectral.com"})))
    c.dns.records.edit(
        rec.id, zone_id=zid, name=rec.name, type="CNAME", ttl=1, content="spectral-api-green.onrender.com"
    )
    try:
        assert str(query(edge, "api.runspectral.com").answer[0][0].target) == "spectral-api-green.onrender.com."
    finally:
        c.dns.records.edit(
            rec.id, zone_id=zid, name=rec.name, type="CNAME", ttl=1, content="spectral-api-blue.onrender.com"
        )


def test_https_endpoints(edge: RunningEdge) -> None:
    cookie = https(edge, "app.runspectral.com", "POST", "/auth/sign-in").headers["set-cookie"].lower()
    assert "domain=runspectral.com" in cookie and "secure" in cookie and "httponly" in cookie
    assert "samesite=lax" in cookie
    assert https(edge, "codex.runspectral.com").status_code == 401  # the Function gates it
    forged = https(edge, "codex.runspectral.com", headers={"Authorization": "Bearer any-bearer-token"})
    assert forged.status_code == 401 and forged.json() == {
        "error": "invalid_token",
        "detail": "malformed token: not a JWT",
    }
    assert https(edge, "spectral-app-green.onrender.com", path="/healthz").status_code == 200
    events = https(edge, "api.runspectral.com", path="/events")
    assert events.headers["content-type"].startswith("text/event-stream") and events.text.count("data:") == 5


def test_faults_change_the_twin(faulted: RunningEdge) -> None:
    c = sdk(faulted)
    zid = zone_id(c)
    api = next(iter(c.dns.records.list(zone_id=zid, name={"exact": "api.runspectral.com"})))
    assert api.proxied is True
    assert setting(c, zid, "ssl") == "flexible"
    assert (
        c.pages.projects.get("spectral-codex", account_id=faulted.overlay["cloudflare_account_id"]).uses_functions
        is False
    )
    assert https(faulted, "codex.runspectral.com").status_code == 200
    assert "domain=" not in https(faulted, "ops.runspectral.com", "POST", "/auth/sign-in").headers["set-cookie"].lower()


def test_token_roll_invalidates_old_value(tmp_path: Path) -> None:
    with running_edge(tmp_path) as e:
        old = e.token
        c = sdk(e, old)
        verified = c.user.tokens.verify()
        assert verified is not None
        tid = verified.id
        assert tid in [t.id for t in c.user.tokens.list()]
        new = c.user.tokens.value.update(tid)
        assert new and new != old
        with pytest.raises(cloudflare.PermissionDeniedError):
            list(sdk(e, old).zones.list())
        assert getattr(sdk(e, new).user.tokens.verify(), "status", None) == "active"
        bad = httpx.get(f"{e.state.address}/user/tokens/verify", headers={"Authorization": f"Bearer {old}"})
        assert bad.status_code == 401 and bad.json()["errors"][0]["code"] == 1000


def test_restart_keeps_the_world_and_its_token(tmp_path: Path) -> None:
    with running_edge(tmp_path) as e:
        token = e.token
        c = sdk(e)
        zid = zone_id(c)
        rec = next(iter(c.dns.records.list(zone_id=zid, name={"exact": "app.runspectral.com"})))
        c.dns.records.edit(
            rec.id, zone_id=zid, name=rec.name, type="CNAME", ttl=1, content="spectral-app-green.onrender.com"
        )
    with running_edge(tmp_path) as again:
        assert again.token == token
        c = sdk(again)
        rec = next(iter(c.dns.records.list(zone_id=zone_id(c), name={"exact": "app.runspectral.com"})))
        assert rec.content == "spectral-app-green.onrender.com"


def test_unhealthy_edge_reports_why(edge: RunningEdge) -> None:
    from runbooks.sandbox.components.edge import EdgeComponent

    broken = ComponentState(name="edge", address="http://127.0.0.1:9/client/v4", extra=dict(edge.state.extra))
    ok, detail = EdgeComponent().health(edge.ctx, broken)
    assert not ok and "edge not answering" in detail
    assert EdgeComponent().health(edge.ctx, edge.state)[0]


def test_create_overwrite_and_conflicts(tmp_path: Path) -> None:
    with running_edge(tmp_path) as e:
        c = sdk(e)
        zid = zone_id(c)
        created = c.dns.records.create(
            zone_id=zid, name="www", type="CNAME", ttl=1, content="app.runspectral.com", proxied=True
        )
        assert created is not None and created.name == "www.runspectral.com" and created.proxied is True
        # a DNS-only CNAME inside the zone is followed by the authoritative server
        c.dns.records.edit(created.id, zone_id=zid, name="www", type="CNAME", ttl=1, proxied=False)
        chain = query(e, "www.runspectral.com")
        assert [str(rr.name) for rr in chain.answer] == ["www.runspectral.com.", "app.runspectral.com."]
        assert ipaddress.ip_address(chain.answer[-1][0].address) in PROXY_V4  # ends at app's proxied answer
        # PUT overwrites: fields not sent fall back to their defaults
        put = c.dns.records.update(created.id, zone_id=zid, name="www", type="A", ttl=300, content="198.51.100.7")
        assert put is not None and (put.type, put.content, put.proxied, put.ttl) == ("A", "198.51.100.7", False, 300)
        with pytest.raises(cloudflare.BadRequestError) as clash:
            c.dns.records.create(zone_id=zid, name="app", type="A", ttl=1, content="198.51.100.8")
        assert body(clash.value)["errors"][0]["code"] == 81053
        with pytest.raises(cloudflare.BadRequestError) as bad_zone:
            c.dns.records.list(zone_id="f" * 32)
        assert body(bad_zone.value)["errors"][0]["code"] == 7003
