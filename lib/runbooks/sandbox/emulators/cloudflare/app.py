"""The Cloudflare API v4 emulator (FastAPI), served under ``/client/v4`` like api.cloudflare.com.

It covers what the runbooks and the key rotation use: zones, DNS records (list with filters and
``result_info`` pagination, get, create, edit, overwrite), the zone settings ``ssl``,
``always_use_https`` and ``min_tls_version``, Pages projects and their custom domains, API tokens
(verify, list, get, create, delete, roll: managing tokens needs the API Tokens permission, which only the
runbooks' admin token has) and ``/ips``. Every call but ``/ips`` (public, as on Cloudflare) needs a valid
bearer token; errors use Cloudflare's envelope and codes. The official ``cloudflare`` SDK talks to it
through ``base_url``.

Split as moto splits a service: :mod:`.models` holds the state's behaviour and validation (over the edge's
shared :class:`~runbooks.sandbox.edge.world.EdgeWorld`); the router modules (:mod:`.tokens`, :mod:`.zones`,
:mod:`.dns_records`, :mod:`.pages`) only parse HTTP and call it. This module assembles them, with the
error handlers, the twin's added latency, ``/ips``, the twin's own control route and the fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from runbooks.providers.cloudflare import PUBLISHED_IPV4, PUBLISHED_IPV6
from runbooks.sandbox.edge.world import EdgeWorld
from runbooks.sandbox.emulators.cloudflare import dns_records, pages, tokens, zones
from runbooks.sandbox.emulators.cloudflare.deps import PREFIX, Auth, Backend, json_body
from runbooks.sandbox.emulators.cloudflare.envelope import error_response, ok
from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError
from runbooks.sandbox.emulators.cloudflare.models import CloudflareBackend

#: router modules, in inclusion order (a path is matched against the routes in this order)
ROUTERS = (tokens.router, zones.router, dns_records.router, pages.router)


def create_app(world: EdgeWorld) -> FastAPI:
    app = FastAPI(title="Cloudflare API v4 (twin)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.world = world
    app.state.backend = CloudflareBackend(world)

    @app.exception_handler(CloudflareError)
    async def _cf_error(_: Request, exc: CloudflareError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(CloudflareError(400, 1004, f"invalid request: {where}: {first.get('msg', '')}"))

    @app.middleware("http")
    async def _latency(request: Request, call_next: Any) -> Any:
        if world.latency:
            await asyncio.sleep(world.latency)
        return await call_next(request)

    @app.get(PREFIX + "/ips")
    def ips() -> dict[str, Any]:
        return ok({"ipv4_cidrs": list(PUBLISHED_IPV4), "ipv6_cidrs": list(PUBLISHED_IPV6), "etag": "twin"})

    for router in ROUTERS:
        app.include_router(router)

    # -- twin control (not Cloudflare: lets tests make an origin unhealthy) ----------------------
    @app.patch("/_twin/origins/{name}")
    async def origin_health(_: Auth, b: Backend, name: str, request: Request) -> dict[str, Any]:
        return ok(b.set_origin_health(name, await json_body(request)))

    @app.api_route(PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def no_route(_: Auth, path: str) -> dict[str, Any]:
        raise CloudflareError(400, 7000, "No route for that URI")

    return app
