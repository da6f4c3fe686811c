"""The DNS (dnspython) and TLS (ssl + cryptography + httpx) providers against the edge twin."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from runbooks.providers.base import ProviderError
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import TlsClient, name_matches
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("dnstls"), ["cert-wrong-name", "api-proxied"]) as e:
        yield e


def resolver(e: RunningEdge) -> DnsResolver:
    return DnsResolver(e.overlay["endpoints"]["dns_resolver"], timeout=2)


def tls(e: RunningEdge, ca: bool = True) -> TlsClient:
    ep = e.overlay["endpoints"]
    return TlsClient(ca_bundle=ep["ca_bundle"] if ca else None, overrides=ep["https_overrides"])


@pytest.mark.parametrize("tcp", [False, True])
def test_resolve_over_udp_and_tcp(edge: RunningEdge, tcp: bool) -> None:
    r = resolver(edge).resolve("docs.runspectral.com", "A", tcp=tcp)
    assert r.rcode == "NOERROR" and r.authoritative and len(r.addresses) == 1
    assert r.transport == ("tcp" if tcp else "udp")


def test_cname_chain_and_negative_answers(edge: RunningEdge) -> None:
    d = resolver(edge)
    origin = d.resolve("spectral-app-blue.onrender.com")
    assert origin.addresses and origin.addresses[0].startswith("198.1")
    both = d.addresses("codex.runspectral.com")
    assert len(both.addresses) == 2 and both.rdtype == "A+AAAA"
    assert d.resolve("missing.runspectral.com").rcode == "NXDOMAIN"
    assert d.resolve("example.org").rcode == "REFUSED"


def test_resolver_timeout_is_a_provider_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        d = DnsResolver(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.2, attempts=2)
        with pytest.raises(ProviderError, match=re.escape("resolve app.runspectral.com A")):
            d.resolve("app.runspectral.com")


def test_certificate_inspection(edge: RunningEdge) -> None:
    c = tls(edge).certificate("app.runspectral.com")
    assert c.chain_valid and c.covers_host and c.names == ("app.runspectral.com",)
    assert 89 < c.days_left <= 90 and c.issuer == "Spectral Twin Root CA" and c.tls_version in ("TLSv1.2", "TLSv1.3")
    wrong = tls(edge).certificate("ops.runspectral.com")
    assert wrong.chain_valid and not wrong.covers_host and wrong.names == ("ops.runspectral.net",)
    untrusted = tls(edge, ca=False).certificate("app.runspectral.com")
    assert not untrusted.chain_valid and untrusted.chain_error


def test_name_matching() -> None:
    assert name_matches("*.onrender.com", "spectral-app-blue.onrender.com")
    assert not name_matches("*.onrender.com", "a.b.onrender.com")
    assert not name_matches("*.onrender.com", "onrender.com")
    assert name_matches("App.RunSpectral.com.", "app.runspectral.com")


def test_requests_go_to_the_override_with_sni_and_host(edge: RunningEdge) -> None:
    r = tls(edge).request("spectral-api-green.onrender.com", "GET", "/healthz")
    assert r.status_code == 200 and r.json()["colour"] == "green"
    with pytest.raises(ProviderError, match=re.escape("GET https://ops.runspectral.com/")):
        tls(edge).request("ops.runspectral.com", "GET", "/")  # the certificate does not cover it


def test_event_arrivals_show_buffering(edge: RunningEdge) -> None:
    arrivals = tls(edge).events("api.runspectral.com", "/events")
    assert len(arrivals) == 5 and [a.data for a in arrivals] == ["0", "1", "2", "3", "4"]
    assert arrivals[-1].offset_s - arrivals[0].offset_s < 0.05  # api-proxied: the stream comes in one piece


def test_handshake_to_nothing_is_a_provider_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = TlsClient(overrides={"x.runspectral.com": f"127.0.0.1:{port}"}, timeout=1)
    with pytest.raises(ProviderError, match=re.escape("TLS handshake with x.runspectral.com")):
        client.certificate("x.runspectral.com")
