"""The twin's authoritative DNS server (dnspython messages over UDP and TCP, on loopback).

Answers come from the edge's *current* records, so an edit through the Cloudflare API is visible in
the next answer. Like Cloudflare: a proxied record answers A/AAAA with addresses inside Cloudflare's
published ranges (the origin stays hidden); a DNS-only CNAME answers with the CNAME and then the
chain followed to the origin's address. Names of the twin's outside world (origins on onrender.com,
Pages projects on pages.dev) are answered too, so chains resolve end to end; anything else is REFUSED.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from runbooks.sandbox.edge.world import EdgeWorld, proxy_addresses

AUTO_TTL = 300
MAX_CHAIN = 8


@dataclass
class Resolution:
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)


def _rrset(name: str, rdtype: str, ttl: int, *values: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name + ".", ttl, "IN", rdtype, *values)


def _soa(zone: str) -> dns.rrset.RRset:
    return _rrset(
        zone, "SOA", 1800, f"ada.ns.cloudflare.com. dns.cloudflare.com. {int(time.time())} 10000 2400 604800 1800"
    )


def resolve(world: EdgeWorld, qname: str, qtype: str, depth: int = 0) -> Resolution:
    """What the edge answers for ``qname``/``qtype`` (CNAME chains followed up to MAX_CHAIN)."""
    name = qname.lower().rstrip(".")
    zone = next((z for z in world.zone_names() if name == z or name.endswith("." + z)), None)
    res = Resolution()
    if zone is not None:
        if name == zone:
            if qtype == "SOA":
                res.answer.append(_soa(zone))
            elif qtype == "NS":
                res.answer.append(_rrset(zone, "NS", 86400, "ada.ns.cloudflare.com.", "bob.ns.cloudflare.com."))
            else:
                res.authority.append(_soa(zone))
            return res
        rec = world.record(name)
        if rec is None:
            res.rcode = dns.rcode.NXDOMAIN
            res.authority.append(_soa(zone))
            return res
        ttl = AUTO_TTL if rec["ttl"] == 1 else int(rec["ttl"])
        if rec["proxied"]:
            v4, v6 = proxy_addresses(name)
            if qtype in ("A", "AAAA"):
                res.answer.append(_rrset(name, qtype, AUTO_TTL, v4 if qtype == "A" else v6))
            else:
                res.authority.append(_soa(zone))
            return res
        if rec["type"] == "CNAME":
            res.answer.append(_rrset(name, "CNAME", ttl, rec["content"].rstrip(".") + "."))
            if qtype != "CNAME" and depth < MAX_CHAIN:
                rest = resolve(world, rec["content"], qtype, depth + 1)
                res.answer.extend(rest.answer)
                if rest.rcode == dns.rcode.NXDOMAIN:
                    res.rcode = rest.rcode
            return res
        if rec["type"] == qtype:
            res.answer.append(_rrset(name, qtype, ttl, rec["content"]))
        else:
            res.authority.append(_soa(zone))
        return res
    origin = world.origin(name)
    if origin is not None:
        if qtype == "A":
            res.answer.append(_rrset(name, "A", 60, origin["address"]))
        return res
    if name.endswith(".pages.dev") and any(p["subdomain"] == name for p in world.data["pages"].values()):
        v4, v6 = proxy_addresses(name)
        if qtype in ("A", "AAAA"):
            res.answer.append(_rrset(name, qtype, AUTO_TTL, v4 if qtype == "A" else v6))
        return res
    res.rcode, res.authoritative = dns.rcode.REFUSED, False
    return res


def handle_wire(world: EdgeWorld, wire: bytes, *, max_size: int | None) -> bytes | None:
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:  # malformed datagrams are dropped, as real servers do
        return None
    if world.latency:
        time.sleep(world.latency)
    response = dns.message.make_response(query)
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    q = query.question[0]
    res = resolve(world, q.name.to_text(), dns.rdatatype.to_text(q.rdtype))
    response.set_rcode(res.rcode)
    if res.authoritative:
        response.flags |= dns.flags.AA
    response.answer.extend(res.answer)
    response.authority.extend(res.authority)
    wire_out = response.to_wire()
    if max_size is not None and len(wire_out) > max_size:
        response.answer, response.authority = [], []
        response.flags |= dns.flags.TC
        wire_out = response.to_wire()
    return wire_out


class _UDPHandler(socketserver.BaseRequestHandler):
    server: _UDPServer

    def handle(self) -> None:
        data, sock = self.request
        out = handle_wire(self.server.world, data, max_size=512)
        if out is not None:
            sock.sendto(out, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(10)
        while True:
            head = self._read(conn, 2)
            if head is None:
                return
            (size,) = struct.unpack("!H", head)
            body = self._read(conn, size)
            if body is None:
                return
            out = handle_wire(self.server.world, body, max_size=None)
            if out is None:
                return
            conn.sendall(struct.pack("!H", len(out)) + out)

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = conn.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], world: EdgeWorld):
        self.world = world
        super().__init__(addr, _UDPHandler)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], world: EdgeWorld):
        self.world = world
        super().__init__(addr, _TCPHandler)


class DnsServer:
    """UDP and TCP listeners on the same loopback port, each serving in a background thread."""

    def __init__(self, world: EdgeWorld, host: str = "127.0.0.1", port: int = 0):
        for _ in range(20):
            udp = _UDPServer((host, port), world)
            try:
                tcp = _TCPServer((host, udp.server_address[1]), world)
            except OSError:
                udp.server_close()
                if port:
                    raise
                continue
            break
        else:
            raise OSError("could not bind UDP and TCP on one free port")
        self.udp, self.tcp = udp, tcp
        self.host, self.port = host, int(udp.server_address[1])
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        for srv, label in ((self.udp, "udp"), (self.tcp, "tcp")):
            t = threading.Thread(target=srv.serve_forever, name=f"edge-dns-{label}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        for srv in (self.udp, self.tcp):
            srv.shutdown()
            srv.server_close()
