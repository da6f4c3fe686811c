"""The twin's HTTPS endpoints: every edge hostname and origin on one loopback port, chosen by SNI.

Certificates come from the twin CA (:mod:`runbooks.sandbox.edge.ca`); the request's ``Host`` picks
what is served:

- ``app`` / ``ops`` (``sets_session_cookie``): ``POST /auth/sign-in`` sets the session cookie
  (``Domain=<cookie domain>; Secure; HttpOnly; SameSite=Lax``);
- ``api`` (``streams_events``): ``GET /events`` streams server-sent events spaced in time; when its
  record is proxied the stream is buffered, as Cloudflare's proxy does to SSE;
- Pages hostnames: served by their project; a project with a Function gates every path: the bearer token
  must be a JWT signed by a key of the Supabase twin's JWKS (:mod:`runbooks.sandbox.edge.jwks_gate`), else
  401 with the reason; a project without a Function serves static pages to anyone;
- origins (``*.onrender.com``): ``GET /healthz`` answers 200, or 503 when the origin is unhealthy, with
  the origin's name and colour in the body and in the ``X-Spectral-Origin`` / ``X-Spectral-Colour`` headers;
- an edge hostname whose record is a CNAME (chain) to an origin is served by that origin, as the edge (proxied)
  or the origin itself (DNS-only) would: its ``GET /healthz`` is the origin's, so a client sees which colour
  answers through the hostname right now.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from runbooks.sandbox.edge.ca import TwinCA
from runbooks.sandbox.edge.jwks_gate import JwksGate
from runbooks.sandbox.edge.world import CERT_EXPIRING_LABEL, CERT_WRONG_NAME_LABEL, EdgeWorld

SIGN_IN_PATH = "/auth/sign-in"
EVENTS_PATH = "/events"
SESSION_COOKIE = "spectral_session"
EVENT_COUNT = 5
EVENT_SPACING_S = 0.25


def _host(request: Request) -> str:
    return (request.headers.get("host") or "").split(":", 1)[0].lower().rstrip(".")


def routed_origin(world: EdgeWorld, host: str) -> tuple[str, dict[str, Any]] | None:
    """The origin that serves ``host`` now: followed through the zone's CNAME records (at most 8 hops)."""
    name = host
    for _ in range(8):
        origin = world.origin(name)
        if origin is not None:
            return name, origin
        record = world.record(name)
        if record is None or record.get("type") != "CNAME":
            return None
        name = str(record["content"]).lower().rstrip(".")
    return None


def _origin_health(host: str, name: str, origin: dict[str, Any]) -> Response:
    body = {"status": "ok" if origin["healthy"] else "unhealthy", "origin": name, "colour": origin["colour"]}
    if host != name:
        body["host"] = host
    headers = {"X-Spectral-Origin": name, "X-Spectral-Colour": str(origin["colour"] or "")}
    return JSONResponse(body, status_code=200 if origin["healthy"] else 503, headers=headers)


def create_app(world: EdgeWorld, gate: JwksGate | None = None) -> FastAPI:
    """The HTTPS app; ``gate`` validates bearer tokens for Pages projects with a Function (none: refuse all)."""
    app = FastAPI(title="Spectral edge (twin)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def _latency(request: Request, call_next: Any) -> Any:
        if world.latency:
            await asyncio.sleep(world.latency)
        return await call_next(request)

    def pages_gate(request: Request, host: str) -> Response | None:
        site = world.site(host)
        project = world.data["pages"].get(site["pages_project"]) if site and site["pages_project"] else None
        if project is None:
            return None
        if not project["uses_functions"]:
            return HTMLResponse(f"<h1>{project['name']}</h1><p>static page</p>")
        authorization = request.headers.get("authorization")
        verdict = gate.check(authorization) if gate is not None else None
        if verdict is None or not verdict.ok:
            reason = verdict.reason if verdict else "the Function has no JWKS gate configured"
            challenge = 'Bearer realm="codex"' + (', error="invalid_token"' if authorization else "")
            return JSONResponse(
                {"error": "invalid_token" if authorization else "authentication_required", "detail": reason},
                status_code=401,
                headers={"WWW-Authenticate": challenge},
            )
        return HTMLResponse(f"<h1>{project['name']}</h1><p>rendered by the Function ({verdict.reason})</p>")

    @app.get("/healthz")
    def healthz(request: Request) -> Response:
        host = _host(request)
        routed = routed_origin(world, host) if world.origin(host) or world.site(host) else None
        if routed is not None:
            return _origin_health(host, *routed)
        if world.site(host) is None:
            return JSONResponse({"error": f"unknown host {host}"}, status_code=421)
        return JSONResponse({"status": "ok", "host": host})

    @app.post(SIGN_IN_PATH)
    def sign_in(request: Request) -> Response:
        host = _host(request)
        site = world.site(host)
        if not site or not site["sets_session_cookie"]:
            return JSONResponse({"error": "not found"}, status_code=404)
        resp = JSONResponse({"signed_in": True, "host": host}, status_code=200)
        domain = None if "cookie-host-only" in world.faults else world.cookie_domain
        resp.set_cookie(
            SESSION_COOKIE,
            secrets.token_urlsafe(24),
            domain=domain,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return resp

    @app.get(EVENTS_PATH)
    async def events(request: Request) -> Response:
        host = _host(request)
        site = world.site(host)
        if not site or not site["streams_events"]:
            return JSONResponse({"error": "not found"}, status_code=404)
        record = world.record(host)
        buffered = bool(record and record["proxied"])

        async def stream() -> AsyncIterator[bytes]:
            if buffered:  # a buffering proxy holds the whole stream back
                await asyncio.sleep(EVENT_COUNT * EVENT_SPACING_S)
                yield b"".join(f"id: {i}\nevent: tick\ndata: {i}\n\n".encode() for i in range(EVENT_COUNT))
                return
            for i in range(EVENT_COUNT):
                if i:
                    await asyncio.sleep(EVENT_SPACING_S)
                yield f"id: {i}\nevent: tick\ndata: {i}\n\n".encode()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.api_route("/{path:path}", methods=["GET", "HEAD"])
    def page(request: Request, path: str) -> Response:
        host = _host(request)
        gated = pages_gate(request, host)
        if gated is not None:
            return gated
        if world.site(host) is None and world.origin(host) is None:
            return JSONResponse({"error": f"unknown host {host}"}, status_code=421)
        return HTMLResponse(f"<h1>{host}</h1><p>/{path}</p>")

    return app


class CertStore:
    """Leaf certificates for every served name, and the SNI callback that picks one per handshake."""

    def __init__(self, ca: TwinCA, directory: Path):
        self.ca, self.directory = ca, directory
        self.contexts: dict[str, ssl.SSLContext] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def _context(self, label: str, names: list[str], days: float) -> ssl.SSLContext:
        issued = self.ca.issue(names, days=days)
        cert_p, key_p = self.directory / f"{label}.pem", self.directory / f"{label}-key.pem"
        cert_p.write_bytes(issued.cert_pem)
        key_p.write_bytes(issued.key_pem)
        key_p.chmod(0o600)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_p, key_p)
        return ctx

    def build(self, world: EdgeWorld) -> None:
        zone = world.zone_names()[0]
        faults = world.faults
        for host in world.hostnames():
            label = host.split(".", 1)[0]
            names, days = [host], 90.0
            if label == CERT_EXPIRING_LABEL and "cert-expiring" in faults:
                days = 3.0
            if label == CERT_WRONG_NAME_LABEL and "cert-wrong-name" in faults:
                names = [f"{label}.{zone.rsplit('.', 1)[0]}.net"]
            self.contexts[host] = self._context(host, names, days)
        for suffix in sorted({o.split(".", 1)[1] for o in world.data["origins"]} | {"pages.dev"}):
            self.contexts["*." + suffix] = self._context("wildcard." + suffix, ["*." + suffix], 90.0)
        self.default_files = (self.directory / f"{zone}.pem", self.directory / f"{zone}-key.pem")
        self.contexts[zone] = self._context(zone, [zone], 90.0)

    def pick(self, server_name: str | None) -> ssl.SSLContext | None:
        if not server_name:
            return None
        name = server_name.lower()
        return self.contexts.get(name) or self.contexts.get("*." + name.split(".", 1)[-1])

    def sni_callback(self, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = self.pick(server_name)
        if chosen is not None:
            sslobj.context = chosen
