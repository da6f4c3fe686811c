"""TLS: handshake with a hostname (SNI), inspect its certificate, and fetch over that TLS.

The connection goes to the hostname itself, or to the address the inventory's
``endpoints.https_overrides`` gives for it (the twin's edge); the chain is verified against
``endpoints.ca_bundle`` (the twin's CA) or the system store. HTTP requests use httpx over the same
routing and trust, with the hostname as SNI and ``Host``.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from runbooks.providers.base import ProviderError

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment


@dataclass(frozen=True)
class CertificateInfo:
    host: str
    address: str  #: "ip:port" the handshake went to
    subject: str
    names: tuple[str, ...]  #: DNS names of the subjectAltName extension
    issuer: str
    not_after: dt.datetime
    chain_valid: bool
    chain_error: str | None  #: the verifier's reason when the chain does not validate
    tls_version: str

    @property
    def days_left(self) -> float:
        return (self.not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400

    @property
    def covers_host(self) -> bool:
        return any(name_matches(pattern, self.host) for pattern in self.names)


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or a wildcard standing for exactly the left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host


@dataclass(frozen=True)
class EventArrival:
    offset_s: float  #: seconds after the response headers arrived
    data: str


class TlsClient:
    name = "tls"  #: labels its errors, as a provider's name does

    def __init__(self, *, ca_bundle: str | None = None, overrides: dict[str, str] | None = None, timeout: float = 10.0):
        self.ca_bundle, self.overrides, self.timeout = ca_bundle, dict(overrides or {}), timeout

    @classmethod
    def from_environment(cls, env: Environment) -> TlsClient:
        return cls(ca_bundle=env.endpoints.ca_bundle, overrides=env.endpoints.https_overrides)

    def context(self, *, verify: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def address(self, host: str, port: int = 443) -> tuple[str, int]:
        over = self.overrides.get(host)
        if over:
            h, _, p = over.rpartition(":")
            return h, int(p)
        return host, port

    # -- certificates ------------------------------------------------------------------------------
    def _handshake(self, host: str, ctx: ssl.SSLContext) -> tuple[bytes, str]:
        addr = self.address(host)
        with (
            socket.create_connection(addr, timeout=self.timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            if der is None:
                raise ProviderError(self.name, f"TLS handshake with {host}", "no certificate presented")
            return der, tls.version() or "?"

    def certificate(self, host: str) -> CertificateInfo:
        """Handshake with SNI ``host``; report the certificate and whether its chain validates."""
        addr = self.address(host)
        strict = self.context()
        strict.check_hostname = False  # name coverage is reported separately, from the SANs
        chain_error: str | None = None
        try:
            der, version = self._handshake(host, strict)
        except ssl.SSLCertVerificationError as e:
            chain_error = e.verify_message or str(e)
            try:
                der, version = self._handshake(host, self.context(verify=False))
            except (OSError, ssl.SSLError) as e2:
                raise ProviderError(self.name, f"TLS handshake with {host}", str(e2)) from None
        except (OSError, ssl.SSLError) as e:
            raise ProviderError(self.name, f"TLS handshake with {host} at {addr[0]}:{addr[1]}", str(e)) from None
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = ()
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        issuer_cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        return CertificateInfo(
            host=host,
            address=f"{addr[0]}:{addr[1]}",
            subject=str(cn[0].value) if cn else cert.subject.rfc4514_string(),
            names=names,
            issuer=str(issuer_cn[0].value) if issuer_cn else cert.issuer.rfc4514_string(),
            not_after=cert.not_valid_after_utc,
            chain_valid=chain_error is None,
            chain_error=chain_error,
            tls_version=version,
        )

    # -- HTTP over that TLS ---------------------------------------------------------------------------
    def _target(self, host: str, path: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        ip, port = self.address(host)
        if host in self.overrides:
            return f"https://{ip}:{port}{path}", {"Host": host}, {"sni_hostname": host}
        return f"https://{host}{path}", {}, {}

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        with httpx.Client(verify=self.context(), timeout=self.timeout, follow_redirects=False) as c:
            yield c

    def request(
        self, host: str, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        url, base_headers, ext = self._target(host, path)
        try:
            with self._client() as c:
                return c.request(method, url, headers={**base_headers, **(headers or {})}, extensions=ext, **kwargs)
        except httpx.HTTPError as e:
            raise ProviderError(self.name, f"{method} https://{host}{path}", f"{type(e).__name__}: {e}") from None

    def events(self, host: str, path: str, *, max_events: int = 5, timeout: float = 15.0) -> list[EventArrival]:
        """Read a server-sent events stream; when each event arrived tells whether it was buffered."""
        url, base_headers, ext = self._target(host, path)
        arrivals: list[EventArrival] = []
        try:
            with (
                self._client() as c,
                c.stream(
                    "GET", url, headers={**base_headers, "Accept": "text/event-stream"}, extensions=ext, timeout=timeout
                ) as resp,
            ):
                if resp.status_code != 200:
                    raise ProviderError(
                        self.name, f"GET https://{host}{path}", f"HTTP {resp.status_code}", status=resp.status_code
                    )
                start, buf = time.monotonic(), ""
                for chunk in resp.iter_text():
                    buf += chunk
                    while "\n\n" in buf:
                        event, buf = buf.split("\n\n", 1)
                        data = "\n".join(line[5:].strip() for line in event.splitlines() if line.startswith("data:"))
                        arrivals.append(EventArrival(time.monotonic() - start, data))
                    if len(arrivals) >= max_events or time.monotonic() - start > timeout:
                        break
        except httpx.HTTPError as e:
            raise ProviderError(self.name, f"GET https://{host}{path}", f"{type(e).__name__}: {e}") from None
        return arrivals
