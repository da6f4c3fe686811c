"""DNS: ask a resolver (the inventory's ``endpoints.dns_resolver``, or the system's) over UDP or TCP.

With an explicit server the query goes to it directly (dnspython ``dns.query``), falling back to TCP
when the UDP answer is truncated, so the answer's CNAME chain and authority flag are visible. Without
one, the system resolver answers (``dns.resolver``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from runbooks.providers.base import ProviderError

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment


@dataclass(frozen=True)
class Resolution:
    name: str
    rdtype: str
    rcode: str  #: "NOERROR", "NXDOMAIN", ...
    cname_chain: tuple[str, ...]  #: CNAME targets followed, in order
    addresses: tuple[str, ...]  #: A/AAAA addresses of the final name
    authoritative: bool
    transport: str  #: "udp", "tcp" or "system"

    @property
    def final_name(self) -> str:
        return self.cname_chain[-1] if self.cname_chain else self.name


def _parse(name: str, rdtype: str, msg: dns.message.Message, transport: str) -> Resolution:
    chain: list[str] = []
    addresses: list[str] = []
    for rrset in msg.answer:
        for rr in rrset:
            if rrset.rdtype == dns.rdatatype.CNAME:
                chain.append(rr.target.to_text().rstrip("."))
            elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses.append(rr.address)
    return Resolution(
        name=name,
        rdtype=rdtype,
        rcode=dns.rcode.to_text(msg.rcode()),
        cname_chain=tuple(chain),
        addresses=tuple(addresses),
        authoritative=bool(msg.flags & dns.flags.AA),
        transport=transport,
    )


class DnsResolver:
    name = "dns"  #: labels its errors, as a provider's name does

    def __init__(self, server: str | None = None, *, timeout: float = 3.0, attempts: int = 2):
        self.server: tuple[str, int] | None = None
        if server:
            host, _, port = server.rpartition(":")
            self.server = (host or server, int(port) if host else 53)
        self.timeout, self.attempts = timeout, attempts

    @classmethod
    def from_environment(cls, env: Environment) -> DnsResolver:
        return cls(env.endpoints.dns_resolver)

    @property
    def description(self) -> str:
        return f"{self.server[0]}:{self.server[1]}" if self.server else "the system resolver"

    def resolve(self, name: str, rdtype: str = "A", *, tcp: bool = False) -> Resolution:
        """One query; NXDOMAIN and empty answers are results, timeouts raise ProviderError."""
        operation = f"resolve {name} {rdtype} via {self.description}"
        last: Exception | None = None
        for _ in range(self.attempts):
            try:
                return self._system(name, rdtype) if self.server is None else self._direct(name, rdtype, tcp)
            except (dns.exception.Timeout, OSError) as e:
                last = e
        raise ProviderError(self.name, operation, f"{type(last).__name__}: {last}")

    def _direct(self, name: str, rdtype: str, tcp: bool) -> Resolution:
        assert self.server is not None
        host, port = self.server
        q = dns.message.make_query(name, rdtype)
        if not tcp:
            msg = dns.query.udp(q, host, port=port, timeout=self.timeout)
            if not msg.flags & dns.flags.TC:
                return _parse(name, rdtype, msg, "udp")
        msg = dns.query.tcp(q, host, port=port, timeout=self.timeout)
        return _parse(name, rdtype, msg, "tcp")

    def _system(self, name: str, rdtype: str) -> Resolution:
        try:
            answer = dns.resolver.resolve(name, rdtype, raise_on_no_answer=False, lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            return Resolution(name, rdtype, "NXDOMAIN", (), (), False, "system")
        except dns.resolver.NoNameservers as e:
            raise ProviderError(self.name, f"resolve {name} {rdtype}", str(e)) from None
        return _parse(name, rdtype, answer.response, "system")

    def addresses(self, name: str) -> Resolution:
        """A and AAAA together (the chain is the A query's)."""
        a = self.resolve(name, "A")
        aaaa = self.resolve(name, "AAAA")
        rcode = a.rcode if a.rcode != "NOERROR" else aaaa.rcode
        return Resolution(
            name,
            "A+AAAA",
            rcode,
            a.cname_chain or aaaa.cname_chain,
            a.addresses + aaaa.addresses,
            a.authoritative and aaaa.authoritative,
            a.transport,
        )
