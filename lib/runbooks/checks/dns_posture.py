"""The edge posture checks (HOSTING.md, 'Hostnames and their edge posture'), one family of checks.

For every hostname of the inventory: the record (type and target), the proxied flag against the
required posture, what resolution answers (inside or outside Cloudflare's ranges), the certificate
(chain, name, days left); for the zone: SSL mode strict, HTTPS always on, minimum TLS >= 1.2; and per
hostname role: the Pages project and its Function, the session cookie's scope and flags, the
unbuffered event stream. Each check is a zero-argument callable returning CheckResult(s); the
runbook runs them concurrently with :func:`runbooks.checks.base.run_checks`.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any

from runbooks.checks.base import CheckFn, CheckResult
from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment, Hostname, Posture
from runbooks.providers.base import ProviderError
from runbooks.providers.cloudflare import CloudflareProvider, IpRanges
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import TlsClient

REQUIRED_SSL_MODE = "strict"
MIN_TLS = (1, 2)


def _named(check: str, subject: str, fn: Callable[[], CheckResult | Sequence[CheckResult]]) -> CheckFn:
    fn.check_name = check  # type: ignore[attr-defined]  # a check function carries its id and subject for run_checks
    fn.subject = subject  # type: ignore[attr-defined]  # a check function carries its id and subject for run_checks
    return fn


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


# -- per hostname ------------------------------------------------------------------------------------
def record_check(cf: CloudflareProvider, h: Hostname) -> CheckFn:
    def run() -> CheckResult:
        rec = cf.find_record(h.name)
        expected = sorted(set((h.blue_green or {}).values())) if h.blue_green else [h.target]
        if rec is None:
            return CheckResult.fail(
                "dns.record",
                h.name,
                "no A, AAAA or CNAME record in the zone",
                f"create a {h.record_type} record {h.name} -> {h.target} "
                f"({_posture_word(h.posture is Posture.PROXIED)})",
            )
        if rec.type != h.record_type:
            return CheckResult.fail(
                "dns.record",
                h.name,
                f"record is {rec.type} {rec.content}, expected {h.record_type}",
                f"replace it with a {h.record_type} record -> {h.target}",
            )
        if rec.content.rstrip(".").lower() not in [t.lower() for t in expected]:
            return CheckResult.fail(
                "dns.record",
                h.name,
                f"{rec.type} -> {rec.content}; expected {' or '.join(expected)}",
                f"point the record at {h.target} (or run flip-blue-green for blue/green hosts)",
            )
        colour = next((c for c, t in (h.blue_green or {}).items() if t == rec.content), None)
        return CheckResult.ok("dns.record", h.name, f"{rec.type} -> {rec.content}" + (f" ({colour})" if colour else ""))

    return _named("dns.record", h.name, run)


def proxied_check(cf: CloudflareProvider, h: Hostname) -> CheckFn:
    def run() -> CheckResult:
        rec = cf.find_record(h.name)
        want = h.posture is Posture.PROXIED
        if rec is None:
            return CheckResult.fail("dns.proxied", h.name, "no record", "create the record first (see dns.record)")
        if rec.proxied != want:
            why = (
                "server-sent events and large uploads break through the proxy"
                if not want
                else "a DNS-only record exposes the origin's address"
            )
            return CheckResult.fail(
                "dns.proxied",
                h.name,
                f"record is {_posture_word(rec.proxied)}; required posture is {_posture_word(want)} ({why})",
                f"set proxied={str(want).lower()} on {h.name} in the Cloudflare dashboard or API",
            )
        return CheckResult.ok("dns.proxied", h.name, f"{_posture_word(rec.proxied)}, as required")

    return _named("dns.proxied", h.name, run)


def resolution_check(cf: CloudflareProvider, resolver: DnsResolver, ranges: _Ranges, h: Hostname) -> CheckFn:
    def run() -> CheckResult:
        want = h.posture is Posture.PROXIED
        rec = cf.find_record(h.name)
        res = resolver.addresses(h.name)
        source = ranges.get()[1]
        if not res.addresses:
            return CheckResult.fail(
                "dns.resolution",
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
            return CheckResult.fail(
                "dns.resolution",
                h.name,
                seen + "; mixed answers",
                "remove the extra A/AAAA records so that one posture answers",
            )
        observed = bool(inside)
        flag = "no record" if rec is None else f"flag says {_posture_word(rec.proxied)}"
        if rec is not None and observed != rec.proxied:
            return CheckResult.fail(
                "dns.resolution",
                h.name,
                f"{seen}; {flag}: resolution disagrees with the flag",
                "another record or a stale delegation answers; check the zone's NS delegation and duplicate records",
            )
        if observed != want:
            return CheckResult.fail(
                "dns.resolution",
                h.name,
                f"{seen}; {flag}; required posture is {_posture_word(want)}",
                f"set proxied={str(want).lower()} on {h.name} (see dns.proxied)",
            )
        return CheckResult.ok("dns.resolution", h.name, f"{seen}; {flag}")

    return _named("dns.resolution", h.name, run)


def certificate_check(tls: TlsClient, h: Hostname, min_cert_days: int) -> CheckFn:
    def run() -> list[CheckResult]:
        c = tls.certificate(h.name)
        out = []
        if c.chain_valid:
            out.append(
                CheckResult.ok("tls.chain", h.name, f"chains to a trusted root (issuer {c.issuer!r}, {c.tls_version})")
            )
        else:
            out.append(
                CheckResult.fail(
                    "tls.chain",
                    h.name,
                    f"chain does not validate: {c.chain_error} (issuer {c.issuer!r})",
                    "install a certificate issued by a trusted CA (Cloudflare edge "
                    "certificate or the origin's), with its full chain",
                )
            )
        names = ", ".join(c.names) or "(no subjectAltName)"
        if c.covers_host:
            out.append(CheckResult.ok("tls.name", h.name, f"covered by {names}"))
        else:
            out.append(
                CheckResult.fail(
                    "tls.name",
                    h.name,
                    f"certificate covers {names}, not {h.name}",
                    f"issue a certificate whose subjectAltName includes {h.name}",
                )
            )
        days = c.days_left
        expiry = f"expires {c.not_after:%Y-%m-%d %H:%M} UTC ({days:.1f} days left; minimum {min_cert_days})"
        if days > min_cert_days:
            out.append(CheckResult.ok("tls.expiry", h.name, expiry))
        else:
            out.append(
                CheckResult.fail(
                    "tls.expiry", h.name, expiry, "renew the certificate now and check why automatic renewal did not"
                )
            )
        return out

    return _named("tls.certificate", h.name, run)


def pages_check(cf: CloudflareProvider, tls: TlsClient, h: Hostname) -> CheckFn:
    def run() -> list[CheckResult]:
        assert h.pages_project
        p = cf.pages_project(h.pages_project)
        rec = cf.find_record(h.name)
        out = []
        problems = []
        if rec is None or rec.content.rstrip(".") != p.subdomain:
            problems.append(f"record points at {rec.content if rec else 'nothing'}, not the project's {p.subdomain}")
        status = p.domain_status.get(h.name)
        if status != "active":
            problems.append(f"custom domain {h.name} is {status or 'not attached'} on the project")
        if problems:
            out.append(
                CheckResult.fail(
                    "pages.project",
                    h.name,
                    f"project {p.name}: " + "; ".join(problems),
                    f"attach {h.name} as a custom domain of Pages project {p.name} and "
                    f"point the record at {p.subdomain}",
                )
            )
        else:
            out.append(
                CheckResult.ok(
                    "pages.project", h.name, f"served by Pages project {p.name} ({p.subdomain}); custom domain active"
                )
            )
        if h.pages_function:
            try:
                r = tls.request(h.name, "GET", "/")
            except ProviderError as e:
                out.append(
                    CheckResult.fail(
                        "pages.function",
                        h.name,
                        f"could not fetch / : {e}",
                        "fix TLS for this hostname first (see the tls.* rows), then re-run",
                    )
                )
                return out
            gated = r.status_code in (401, 403)
            seen = f"latest deployment uses_functions={p.uses_functions}; unauthenticated GET / -> {r.status_code}"
            if p.uses_functions and gated:
                out.append(CheckResult.ok("pages.function", h.name, seen + " (the Function gates it)"))
            else:
                out.append(
                    CheckResult.fail(
                        "pages.function",
                        h.name,
                        seen + " (the Function's gate is missing)",
                        f"redeploy Pages project {p.name} with its functions/ directory (the JWKS gate), then re-run",
                    )
                )
        return out

    return _named("pages.project", h.name, run)


def cookie_check(tls: TlsClient, h: Hostname, cookie_domain: str, sign_in_path: str) -> CheckFn:
    def run() -> CheckResult:
        try:
            r = tls.request(h.name, "POST", sign_in_path)
        except ProviderError as e:
            return CheckResult.fail(
                "cookie.session",
                h.name,
                f"could not sign in: {e}",
                "fix TLS for this hostname first (see the tls.* rows), then re-run",
            )
        headers = r.headers.get_list("set-cookie")
        if not headers:
            return CheckResult.fail(
                "cookie.session",
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
            return CheckResult.fail(
                "cookie.session",
                h.name,
                "; ".join(problems),
                f"set the session cookie with Domain={cookie_domain}; Secure; HttpOnly; "
                "SameSite=Lax (the app's cookie settings), so sessions span subdomains",
            )
        return CheckResult.ok("cookie.session", h.name, "; ".join(seen))

    return _named("cookie.session", h.name, run)


def events_check(tls: TlsClient, h: Hostname, events_path: str, min_spread_s: float) -> CheckFn:
    def run() -> CheckResult:
        arrivals = tls.events(h.name, events_path)
        if len(arrivals) < 2:
            return CheckResult.fail(
                "sse.unbuffered",
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
            return CheckResult.fail(
                "sse.unbuffered",
                h.name,
                seen + ": delivered at once (buffered)",
                f"make {h.name} DNS-only (proxied=false): a buffering proxy holds the stream",
            )
        return CheckResult.ok("sse.unbuffered", h.name, seen + ": streamed as they were produced")

    return _named("sse.unbuffered", h.name, run)


# -- zone ---------------------------------------------------------------------------------------------
def zone_checks(cf: CloudflareProvider, zone: str) -> list[CheckFn]:
    def ssl_mode() -> CheckResult:
        v = cf.setting("ssl")
        if v == REQUIRED_SSL_MODE:
            return CheckResult.ok("zone.ssl", zone, "SSL mode strict (edge verifies the origin's certificate)")
        return CheckResult.fail(
            "zone.ssl",
            zone,
            f"SSL mode is {v}",
            "set SSL/TLS encryption mode to Full (strict) once every origin has a valid certificate",
        )

    def always_https() -> CheckResult:
        v = cf.setting("always_use_https")
        if v == "on":
            return CheckResult.ok("zone.always_use_https", zone, "Always Use HTTPS is on")
        return CheckResult.fail(
            "zone.always_use_https",
            zone,
            f"Always Use HTTPS is {v}",
            "turn Always Use HTTPS on (SSL/TLS > Edge Certificates)",
        )

    def min_tls() -> CheckResult:
        v = cf.setting("min_tls_version")
        try:
            ok = tuple(int(x) for x in v.split(".")) >= MIN_TLS
        except ValueError:
            ok = False
        if ok:
            return CheckResult.ok("zone.min_tls_version", zone, f"minimum TLS version {v}")
        return CheckResult.fail(
            "zone.min_tls_version", zone, f"minimum TLS version is {v}", "set Minimum TLS Version to 1.2 or higher"
        )

    return [
        _named("zone.ssl", zone, ssl_mode),
        _named("zone.always_use_https", zone, always_https),
        _named("zone.min_tls_version", zone, min_tls),
    ]


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
    ranges = _Ranges(cf)
    checks: list[CheckFn] = []
    for h in hostnames if hostnames is not None else env.hostnames:
        checks += [
            record_check(cf, h),
            proxied_check(cf, h),
            resolution_check(cf, resolver, ranges, h),
            certificate_check(tls, h, min_cert_days),
        ]
        if h.pages_project:
            checks.append(pages_check(cf, tls, h))
        if h.sets_session_cookie:
            checks.append(cookie_check(tls, h, env.cookie_domain, sign_in_path))
        if h.streams_events:
            checks.append(events_check(tls, h, events_path, min_event_spread_s))
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
