"""The edge posture checks (HOSTING.md, 'Hostnames and their edge posture'), one family of checks.

For every hostname of the inventory: the record (type and target), the proxied flag against the
required posture, what resolution answers (inside or outside Cloudflare's ranges), the certificate
(chain, name, days left); for the zone: SSL mode strict, HTTPS always on, minimum TLS >= 1.2; and per
hostname role: the Pages project and its Function, the session cookie's scope and flags, the
unbuffered event stream. Each check is registered once in :data:`EDGE`
(:mod:`runbooks.checks.builder`); :func:`build_checks` binds them to the inventory and the runbook runs
them concurrently with :func:`runbooks.checks.base.run_checks`.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any

from runbooks.checks.base import CheckResult
from runbooks.checks.builder import CheckFamily, CheckFn, Memo
from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment, Hostname, Posture
from runbooks.providers.base import ProviderError
from runbooks.providers.cloudflare import CloudflareProvider, IpRanges, PagesProject
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import CertificateInfo, TlsClient

REQUIRED_SSL_MODE = "strict"
MIN_TLS = (1, 2)

#: the edge posture checks (check-dns-posture), each id registered once
EDGE = CheckFamily("edge")


class _Ranges:
    """Cloudflare's ranges, read once from /ips (or the built-in list) and shared by all checks."""

    def __init__(self, cf: CloudflareProvider):
        self._cf, self._lock = cf, threading.Lock()
        self._value: tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], str] | None = None

    def get(self) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], str]:
        with self._lock:
            if self._value is None:
                r: IpRanges = self._cf.ip_ranges()
                self._value = ([ipaddress.ip_network(c) for c in (*r.ipv4, *r.ipv6)], r.source)
            return self._value

    def inside(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.get()[0] if net.version == ip.version)


def _posture_word(proxied: bool) -> str:
    return "proxied" if proxied else "DNS-only"


class _Reads:
    """What several checks of one hostname read, once per run: its certificate (the three ``tls.*``
    checks) and its Pages project (``pages.project`` and ``pages.function``)."""

    def __init__(self, cf: CloudflareProvider, tls: TlsClient):
        self.cf, self.tls, self._memo = cf, tls, Memo()

    def certificate(self, name: str) -> CertificateInfo:
        return self._memo.get(("certificate", name), lambda: self.tls.certificate(name))

    def pages_project(self, name: str) -> PagesProject:
        return self._memo.get(("pages", name), lambda: self.cf.pages_project(name))


# -- per hostname ------------------------------------------------------------------------------------
@EDGE.check("dns.record", title="the record has the inventory's type and target")
def record(cf: CloudflareProvider, h: Hostname) -> CheckResult:
    rec = cf.find_record(h.name)
    expected = sorted(set((h.blue_green or {}).values())) if h.blue_green else [h.target]
    if rec is None:
        return record.fail(
            h.name,
            "no A, AAAA or CNAME record in the zone",
            f"create a {h.record_type} record {h.name} -> {h.target} ({_posture_word(h.posture is Posture.PROXIED)})",
        )
    if rec.type != h.record_type:
        return record.fail(
            h.name,
            f"record is {rec.type} {rec.content}, expected {h.record_type}",
            f"replace it with a {h.record_type} record -> {h.target}",
        )
    if rec.content.rstrip(".").lower() not in [t.lower() for t in expected]:
        return record.fail(
            h.name,
            f"{rec.type} -> {rec.content}; expected {' or '.join(expected)}",
            f"point the record at {h.target} (or run flip-blue-green for blue/green hosts)",
        )
    colour = next((c for c, t in (h.blue_green or {}).items() if t == rec.content), None)
    return record.ok(h.name, f"{rec.type} -> {rec.content}" + (f" ({colour})" if colour else ""))


@EDGE.check("dns.proxied", title="the record's proxied flag is the required posture")
def proxied(cf: CloudflareProvider, h: Hostname) -> CheckResult:
    rec = cf.find_record(h.name)
    want = h.posture is Posture.PROXIED
    if rec is None:
        return proxied.fail(h.name, "no record", "create the record first (see dns.record)")
    if rec.proxied != want:
        why = (
            "server-sent events and large uploads break through the proxy"
            if not want
            else "a DNS-only record exposes the origin's address"
        )
        return proxied.fail(
            h.name,
            f"record is {_posture_word(rec.proxied)}; required posture is {_posture_word(want)} ({why})",
            f"set proxied={str(want).lower()} on {h.name} in the Cloudflare dashboard or API",
        )
    return proxied.ok(h.name, f"{_posture_word(rec.proxied)}, as required")


@EDGE.check("dns.resolution", title="resolution answers inside or outside Cloudflare's ranges as the flag says")
def resolution(cf: CloudflareProvider, resolver: DnsResolver, ranges: _Ranges, h: Hostname) -> CheckResult:
    want = h.posture is Posture.PROXIED
    rec = cf.find_record(h.name)
    res = resolver.addresses(h.name)
    source = ranges.get()[1]
    if not res.addresses:
        return resolution.fail(
            h.name,
            f"{res.rcode}: no address from {resolver.description}",
            "check the record exists and its target resolves",
        )
    inside = [a for a in res.addresses if ranges.inside(a)]
    outside = [a for a in res.addresses if not ranges.inside(a)]
    chain = f" via {' -> '.join(res.cname_chain)}" if res.cname_chain else ""
    seen = (
        f"answers {', '.join(res.addresses)}{chain}: {len(inside)} inside, {len(outside)} outside "
        f"Cloudflare's ranges ({source})"
    )
    if inside and outside:
        return resolution.fail(
            h.name, seen + "; mixed answers", "remove the extra A/AAAA records so that one posture answers"
        )
    observed = bool(inside)
    flag = "no record" if rec is None else f"flag says {_posture_word(rec.proxied)}"
    if rec is not None and observed != rec.proxied:
        return resolution.fail(
            h.name,
            f"{seen}; {flag}: resolution disagrees with the flag",
            "another record or a stale delegation answers; check the zone's NS delegation and duplicate records",
        )
    if observed != want:
        return resolution.fail(
            h.name,
            f"{seen}; {flag}; required posture is {_posture_word(want)}",
            f"set proxied={str(want).lower()} on {h.name} (see dns.proxied)",
        )
    return resolution.ok(h.name, f"{seen}; {flag}")


@EDGE.check("tls.chain", title="the certificate chains to a trusted root")
def tls_chain(reads: _Reads, h: Hostname) -> CheckResult:
    c = reads.certificate(h.name)
    if c.chain_valid:
        return tls_chain.ok(h.name, f"chains to a trusted root (issuer {c.issuer!r}, {c.tls_version})")
    return tls_chain.fail(
        h.name,
        f"chain does not validate: {c.chain_error} (issuer {c.issuer!r})",
        "install a certificate issued by a trusted CA (Cloudflare edge certificate or the origin's), "
        "with its full chain",
    )


@EDGE.check("tls.name", title="the certificate covers the hostname")
def tls_name(reads: _Reads, h: Hostname) -> CheckResult:
    c = reads.certificate(h.name)
    names = ", ".join(c.names) or "(no subjectAltName)"
    if c.covers_host:
        return tls_name.ok(h.name, f"covered by {names}")
    return tls_name.fail(
        h.name,
        f"certificate covers {names}, not {h.name}",
        f"issue a certificate whose subjectAltName includes {h.name}",
    )


@EDGE.check("tls.expiry", title="the certificate has more than the minimum days left")
def tls_expiry(reads: _Reads, h: Hostname, min_cert_days: int) -> CheckResult:
    c = reads.certificate(h.name)
    days = c.days_left
    expiry = f"expires {c.not_after:%Y-%m-%d %H:%M} UTC ({days:.1f} days left; minimum {min_cert_days})"
    if days > min_cert_days:
        return tls_expiry.ok(h.name, expiry)
    return tls_expiry.fail(h.name, expiry, "renew the certificate now and check why automatic renewal did not")


@EDGE.check("pages.project", title="the hostname is a custom domain of its Pages project")
def pages_project(reads: _Reads, h: Hostname) -> CheckResult:
    assert h.pages_project
    p = reads.pages_project(h.pages_project)
    rec = reads.cf.find_record(h.name)
    problems = []
    if rec is None or rec.content.rstrip(".") != p.subdomain:
        problems.append(f"record points at {rec.content if rec else 'nothing'}, not the project's {p.subdomain}")
    status = p.domain_status.get(h.name)
    if status != "active":
        problems.append(f"custom domain {h.name} is {status or 'not attached'} on the project")
    if problems:
        return pages_project.fail(
            h.name,
            f"project {p.name}: " + "; ".join(problems),
            f"attach {h.name} as a custom domain of Pages project {p.name} and point the record at {p.subdomain}",
        )
    return pages_project.ok(h.name, f"served by Pages project {p.name} ({p.subdomain}); custom domain active")


@EDGE.check("pages.function", title="the Pages Function gates unauthenticated requests")
def pages_function(reads: _Reads, h: Hostname) -> CheckResult:
    assert h.pages_project
    p = reads.pages_project(h.pages_project)
    try:
        r = reads.tls.request(h.name, "GET", "/")
    except ProviderError as e:
        return pages_function.fail(
            h.name, f"could not fetch / : {e}", "fix TLS for this hostname first (see the tls.* rows), then re-run"
        )
    gated = r.status_code in (401, 403)
    seen = f"latest deployment uses_functions={p.uses_functions}; unauthenticated GET / -> {r.status_code}"
    if p.uses_functions and gated:
        return pages_function.ok(h.name, seen + " (the Function gates it)")
    return pages_function.fail(
        h.name,
        seen + " (the Function's gate is missing)",
        f"redeploy Pages project {p.name} with its functions/ directory (the JWKS gate), then re-run",
    )


@EDGE.check("cookie.session", title="the session cookie spans subdomains, Secure, HttpOnly, SameSite")
def cookie_session(tls: TlsClient, h: Hostname, cookie_domain: str, sign_in_path: str) -> CheckResult:
    try:
        r = tls.request(h.name, "POST", sign_in_path)
    except ProviderError as e:
        return cookie_session.fail(
            h.name, f"could not sign in: {e}", "fix TLS for this hostname first (see the tls.* rows), then re-run"
        )
    headers = r.headers.get_list("set-cookie")
    if not headers:
        return cookie_session.fail(
            h.name,
            f"POST {sign_in_path} -> {r.status_code}, no Set-Cookie",
            "check the sign-in endpoint (the check signs in to read the session cookie)",
        )
    problems, seen = [], []
    for header in headers:
        jar = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            problems.append(f"unparseable Set-Cookie {header.split('=', 1)[0]!r}")
            continue
        for name, morsel in jar.items():
            attrs = []
            domain = morsel["domain"].lstrip(".").lower()
            if domain != cookie_domain:
                problems.append(f"{name}: Domain={domain or '(none: host-only)'}, expected {cookie_domain}")
            else:
                attrs.append(f"Domain={domain}")
            for flag, label in (("secure", "Secure"), ("httponly", "HttpOnly")):
                if morsel[flag]:
                    attrs.append(label)
                else:
                    problems.append(f"{name}: {label} missing")
            samesite = morsel["samesite"]
            if not samesite:
                problems.append(f"{name}: SameSite missing")
            else:
                attrs.append(f"SameSite={samesite}")
            seen.append(f"{name}: {'; '.join(attrs)}")
    if problems:
        return cookie_session.fail(
            h.name,
            "; ".join(problems),
            f"set the session cookie with Domain={cookie_domain}; Secure; HttpOnly; "
            "SameSite=Lax (the app's cookie settings), so sessions span subdomains",
        )
    return cookie_session.ok(h.name, "; ".join(seen))


@EDGE.check("sse.unbuffered", title="server-sent events arrive as they are produced")
def sse_unbuffered(tls: TlsClient, h: Hostname, events_path: str, min_spread_s: float) -> CheckResult:
    arrivals = tls.events(h.name, events_path)
    if len(arrivals) < 2:
        return sse_unbuffered.fail(
            h.name,
            f"{len(arrivals)} event(s) from GET {events_path}",
            "check the events endpoint serves a stream of at least two events",
        )
    spread = arrivals[-1].offset_s - arrivals[0].offset_s
    seen = (
        f"{len(arrivals)} events; first after {arrivals[0].offset_s:.2f}s, last after "
        f"{arrivals[-1].offset_s:.2f}s (spread {spread:.2f}s)"
    )
    if spread < min_spread_s:
        return sse_unbuffered.fail(
            h.name,
            seen + ": delivered at once (buffered)",
            f"make {h.name} DNS-only (proxied=false): a buffering proxy holds the stream",
        )
    return sse_unbuffered.ok(h.name, seen + ": streamed as they were produced")


# -- zone ---------------------------------------------------------------------------------------------
@EDGE.check("zone.ssl", title="SSL mode Full (strict)")
def zone_ssl(cf: CloudflareProvider, zone: str) -> CheckResult:
    v = cf.setting("ssl")
    if v == REQUIRED_SSL_MODE:
        return zone_ssl.ok(zone, "SSL mode strict (edge verifies the origin's certificate)")
    return zone_ssl.fail(
        zone,
        f"SSL mode is {v}",
        "set SSL/TLS encryption mode to Full (strict) once every origin has a valid certificate",
    )


@EDGE.check("zone.always_use_https", title="Always Use HTTPS on")
def zone_always_https(cf: CloudflareProvider, zone: str) -> CheckResult:
    v = cf.setting("always_use_https")
    if v == "on":
        return zone_always_https.ok(zone, "Always Use HTTPS is on")
    return zone_always_https.fail(
        zone, f"Always Use HTTPS is {v}", "turn Always Use HTTPS on (SSL/TLS > Edge Certificates)"
    )


@EDGE.check("zone.min_tls_version", title="minimum TLS version 1.2 or higher")
def zone_min_tls(cf: CloudflareProvider, zone: str) -> CheckResult:
    v = cf.setting("min_tls_version")
    try:
        ok = tuple(int(x) for x in v.split(".")) >= MIN_TLS
    except ValueError:
        ok = False
    if ok:
        return zone_min_tls.ok(zone, f"minimum TLS version {v}")
    return zone_min_tls.fail(zone, f"minimum TLS version is {v}", "set Minimum TLS Version to 1.2 or higher")


def zone_checks(cf: CloudflareProvider, zone: str) -> list[CheckFn]:
    return [check.on(zone, cf, zone) for check in (zone_ssl, zone_always_https, zone_min_tls)]


def build_checks(
    env: Environment,
    cf: CloudflareProvider,
    resolver: DnsResolver,
    tls: TlsClient,
    *,
    min_cert_days: int = 14,
    sign_in_path: str | None = None,
    events_path: str | None = None,
    min_event_spread_s: float = 0.1,
    hostnames: list[Hostname] | None = None,
) -> list[CheckFn]:
    """Every edge posture check for ``env`` (or for ``hostnames``, e.g. a subset), in a stable order.

    The sign-in and server-sent-events paths are the inventory's ``probes`` (the service contract) unless given."""
    sign_in_path = sign_in_path or env.probes.sign_in_path
    events_path = events_path or env.probes.events_path
    ranges, reads = _Ranges(cf), _Reads(cf, tls)
    checks: list[CheckFn] = []
    for h in hostnames if hostnames is not None else env.hostnames:
        checks += [
            record.on(h.name, cf, h),
            proxied.on(h.name, cf, h),
            resolution.on(h.name, cf, resolver, ranges, h),
            tls_chain.on(h.name, reads, h),
            tls_name.on(h.name, reads, h),
            tls_expiry.on(h.name, reads, h, min_cert_days),
        ]
        if h.pages_project:
            checks.append(pages_project.on(h.name, reads, h))
            if h.pages_function:
                checks.append(pages_function.on(h.name, reads, h))
        if h.sets_session_cookie:
            checks.append(cookie_session.on(h.name, tls, h, env.cookie_domain, sign_in_path))
        if h.streams_events:
            checks.append(sse_unbuffered.on(h.name, tls, h, events_path, min_event_spread_s))
    return [*checks, *zone_checks(cf, env.zone)]


def select_hostnames(env: Environment, hostname: str = "") -> list[Hostname]:
    """The hostnames to check: every one when ``hostname`` is empty, else the one it names (name or label);
    an unknown name is refused (:class:`BadParameter`) before any check runs."""
    if not hostname.strip():
        return list(env.hostnames)
    try:
        return [env.hostname(hostname.strip())]
    except KeyError:
        raise BadParameter(
            "hostname",
            hostname,
            f"not a hostname of the {env.environment} inventory",
            f"give one of: {', '.join(h.label for h in env.hostnames)} (or its full name, e.g. "
            f"{env.hostnames[0].name}); leave it empty to check every hostname",
        ) from None


def check_min_cert_days(min_cert_days: int) -> int:
    """``min_cert_days`` must be a number of days >= 0 (:class:`BadParameter` otherwise)."""
    if min_cert_days < 0:
        raise BadParameter(
            "min_cert_days", min_cert_days, "a negative number of days", "give 0 or more (e.g. 14, the default)"
        )
    return min_cert_days


def providers(env: Environment) -> tuple[CloudflareProvider, DnsResolver, TlsClient]:
    """The three providers the checks need, built from the inventory (the token via runbooks.secret)."""
    return CloudflareProvider.from_environment(env), DnsResolver.from_environment(env), TlsClient.from_environment(env)


def summary(results: Sequence[CheckResult]) -> dict[str, Any]:
    """What the run records: counts and the failed rows."""
    from runbooks.checks.base import counts

    return {"counts": counts(results), "failed": [r.as_dict() for r in results if r.status.value == "FAIL"]}
