"""The edge checks that share a read: one certificate per hostname for the three tls.* checks, one Pages
project for pages.project and pages.function, each check still its own row (and its own crash row)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from runbooks import inventory
from runbooks.checks import Status, run_checks
from runbooks.checks.dns_posture import EDGE, _Reads, tls_chain, tls_expiry, tls_name
from runbooks.providers.cloudflare import PagesProject
from runbooks.providers.tls import CertificateInfo

HOSTNAME = inventory.load("production").hostnames[0]
HOST = HOSTNAME.name


class CountingTls:
    def __init__(self, cert: CertificateInfo | Exception):
        self.cert, self.calls, self._lock = cert, 0, threading.Lock()

    def certificate(self, name: str) -> CertificateInfo:
        with self._lock:
            self.calls += 1
        if isinstance(self.cert, Exception):
            raise self.cert
        return self.cert


class CountingCloudflare:
    def __init__(self) -> None:
        self.calls = 0

    def pages_project(self, name: str) -> PagesProject:
        self.calls += 1
        return PagesProject(name, f"{name}.pages.dev", (HOST,), True, {HOST: "active"})


def cert(*, names: tuple[str, ...] = (HOST,), days: float = 60, valid: bool = True) -> CertificateInfo:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return CertificateInfo(HOST, "127.0.0.1:443", HOST, names, "Test CA", not_after, valid, None, "TLSv1.3")


def rows(tls: Any) -> list[tuple[str, Status]]:
    h = HOSTNAME
    reads = _Reads(CountingCloudflare(), tls)
    checks = [c.on(h.name, reads, h, *extra) for c, extra in ((tls_chain, ()), (tls_name, ()), (tls_expiry, (14,)))]
    return [(r.check, r.status) for r in run_checks(checks * 3, max_workers=9)][:3]


def test_the_three_tls_checks_read_the_certificate_once() -> None:
    tls = CountingTls(cert(days=3))
    assert rows(tls) == [("tls.chain", Status.PASS), ("tls.name", Status.PASS), ("tls.expiry", Status.FAIL)]
    assert tls.calls == 1


def test_each_tls_check_fails_on_its_own_fact() -> None:
    h = HOSTNAME
    bad = _Reads(CountingCloudflare(), CountingTls(cert(names=("other.example",), days=3, valid=False)))
    assert tls_chain(bad, h).status is Status.FAIL
    assert tls_name(bad, h).status is Status.FAIL
    assert tls_expiry(bad, h, 14).status is Status.FAIL
    good = _Reads(CountingCloudflare(), CountingTls(cert()))
    assert [tls_chain(good, h).status, tls_name(good, h).status, tls_expiry(good, h, 14).status] == [Status.PASS] * 3


def test_a_certificate_that_cannot_be_read_is_a_fail_row_per_check() -> None:
    tls = CountingTls(TimeoutError("handshake timed out"))
    assert rows(tls) == [("tls.chain", Status.FAIL), ("tls.name", Status.FAIL), ("tls.expiry", Status.FAIL)]


def test_the_pages_project_is_read_once() -> None:
    cf = CountingCloudflare()
    reads = _Reads(cf, CountingTls(cert()))
    assert reads.pages_project("site") is reads.pages_project("site") and cf.calls == 1


def test_the_edge_family_lists_its_checks_in_run_order() -> None:
    assert EDGE.ids() == [
        "dns.record",
        "dns.proxied",
        "dns.resolution",
        "tls.chain",
        "tls.name",
        "tls.expiry",
        "pages.project",
        "pages.function",
        "cookie.session",
        "sse.unbuffered",
        "zone.ssl",
        "zone.always_use_https",
        "zone.min_tls_version",
    ]
