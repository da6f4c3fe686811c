"""The Cloudflare API v4 emulator (FastAPI), served under ``/client/v4`` like api.cloudflare.com.

It covers what the runbooks and the key rotation use: zones, DNS records (list with filters and
``result_info`` pagination, get, create, edit, overwrite), the zone settings ``ssl``,
``always_use_https`` and ``min_tls_version``, Pages projects and their custom domains, API tokens
(verify, list, get, create, delete, roll: managing tokens needs the API Tokens permission, which only the
runbooks' admin token has) and ``/ips``. Every call but ``/ips`` (public, as on Cloudflare) needs a valid
bearer token; errors use Cloudflare's envelope and codes. The official ``cloudflare`` SDK talks to it
through ``base_url``. State is the edge's shared :class:`~runbooks.sandbox.edge.world.EdgeWorld`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from runbooks.providers.cloudflare import PUBLISHED_IPV4, PUBLISHED_IPV6
from runbooks.sandbox.edge.world import EdgeWorld, hex_id, now_ts, token_permissions
from runbooks.sandbox.emulators.cloudflare.envelope import CloudflareError, error_response, ok, paginate

PREFIX = "/client/v4"
SETTINGS = {
    "ssl": ("off", "flexible", "full", "strict"),
    "always_use_https": ("on", "off"),
    "min_tls_version": ("1.0", "1.1", "1.2", "1.3"),
}
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _valid_content(rtype: str, content: str) -> bool:
    if rtype == "A":
        try:
            return isinstance(ipaddress.ip_address(content), ipaddress.IPv4Address)
        except ValueError:
            return False
    if rtype == "AAAA":
        try:
            return isinstance(ipaddress.ip_address(content), ipaddress.IPv6Address)
        except ValueError:
            return False
    if rtype == "CNAME":
        return bool(_HOST_RE.match(content.lower().rstrip(".")))
    return bool(content)


def token(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """The calling API token (a dependency of every authenticated route)."""
    if not authorization:
        raise CloudflareError(400, 6003, "Invalid request headers: missing Authorization header")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise CloudflareError(400, 6111, "Invalid format for Authorization header")
    t = request.app.state.world.verify_token(value.strip())
    if t is None:
        raise CloudflareError(403, 10000, "Authentication error")
    return dict(t)


Auth = Annotated[dict[str, Any], Depends(token)]


def create_app(world: EdgeWorld) -> FastAPI:
    app = FastAPI(title="Cloudflare API v4 (twin)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.world = world

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

    def zone(zone_id: str) -> dict[str, Any]:
        z = world.data["zones"].get(zone_id)
        if z is None:
            raise CloudflareError(
                400, 7003, "Could not route to /zones/" + zone_id + ", perhaps your object identifier is invalid?"
            )
        return z

    def public_zone(z: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in z.items() if k != "settings"}

    # -- public ------------------------------------------------------------------------------
    @app.get(PREFIX + "/ips")
    def ips() -> dict[str, Any]:
        return ok({"ipv4_cidrs": list(PUBLISHED_IPV4), "ipv6_cidrs": list(PUBLISHED_IPV6), "etag": "twin"})

    # -- tokens --------------------------------------------------------------------------------
    @app.get(PREFIX + "/user/tokens/verify")
    def verify(authorization: Annotated[str | None, Header()] = None) -> Any:
        value = (authorization or "").partition(" ")[2].strip()
        t = world.verify_token(value) if value else None
        if t is None:
            return error_response(CloudflareError(401, 1000, "Invalid API Token"))
        return ok(
            {"id": t["id"], "status": t["status"], "not_before": t["not_before"], "expires_on": t["expires_on"]},
            messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
        )

    def public_token(t: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in t.items() if k != "value_hash"}

    def require(caller: dict[str, Any], *allowed: str) -> None:
        if not token_permissions(caller) & set(allowed):
            raise CloudflareError(403, 9109, "Unauthorized to access requested resource")

    def token_of(token_id: str) -> dict[str, Any]:
        t = world.token(token_id)
        if t is None:
            raise CloudflareError(404, 1003, "Token not found")
        return t

    @app.get(PREFIX + "/user/tokens")
    def list_tokens(caller: Auth, page: int = 1, per_page: int = 20) -> dict[str, Any]:
        require(caller, "API Tokens Read", "API Tokens Write")
        with world.lock:
            items = [public_token(t) for t in world.data["tokens"].values()]
        return paginate(items, page, per_page)

    @app.post(PREFIX + "/user/tokens")
    async def create_token(caller: Auth, request: Request) -> dict[str, Any]:
        require(caller, "API Tokens Write")
        body = await _json(request)
        name, policies = body.get("name"), body.get("policies")
        if not isinstance(name, str) or not name.strip() or len(name) > 120:
            raise CloudflareError(400, 1004, "name: a non-empty string of at most 120 characters is required")
        if not isinstance(policies, list) or not policies:
            raise CloudflareError(400, 1004, "policies: at least one policy is required")
        for i, pol in enumerate(policies):
            groups = pol.get("permission_groups") if isinstance(pol, dict) else None
            resources = pol.get("resources") if isinstance(pol, dict) else None
            if not isinstance(pol, dict) or pol.get("effect") not in ("allow", "deny"):
                raise CloudflareError(400, 1004, f"policies[{i}].effect must be allow or deny")
            if (
                not isinstance(groups, list)
                or not groups
                or not all(isinstance(g, dict) and g.get("id") for g in groups)
            ):
                raise CloudflareError(400, 1004, f"policies[{i}].permission_groups: a list of {{id}} is required")
            if not isinstance(resources, dict) or not resources:
                raise CloudflareError(400, 1004, f"policies[{i}].resources: a non-empty object is required")
        t, value = world.create_token(
            name.strip(),
            policies,
            condition=body.get("condition") if isinstance(body.get("condition"), dict) else None,
            not_before=body.get("not_before"),
            expires_on=body.get("expires_on"),
        )
        return ok({**public_token(t), "value": value})

    @app.get(PREFIX + "/user/tokens/{token_id}")
    def get_token(caller: Auth, token_id: str) -> dict[str, Any]:
        require(caller, "API Tokens Read", "API Tokens Write")
        return ok(public_token(token_of(token_id)))

    @app.delete(PREFIX + "/user/tokens/{token_id}")
    def delete_token(caller: Auth, token_id: str) -> dict[str, Any]:
        require(caller, "API Tokens Write")
        token_of(token_id)
        world.delete_token(token_id)
        return ok({"id": token_id})

    @app.put(PREFIX + "/user/tokens/{token_id}/value")
    def roll_token(caller: Auth, token_id: str) -> dict[str, Any]:
        require(caller, "API Tokens Write")
        value = world.roll_token(token_id)
        if value is None:
            raise CloudflareError(404, 1003, "Token not found")
        return ok(value)

    # -- zones ---------------------------------------------------------------------------------
    @app.get(PREFIX + "/zones")
    def list_zones(_: Auth, name: str | None = None, page: int = 1, per_page: int = 20) -> dict[str, Any]:
        with world.lock:
            items = [public_zone(z) for z in world.data["zones"].values() if name in (None, z["name"])]
        if not 5 <= per_page <= 50:
            raise CloudflareError(400, 1004, "per_page must be between 5 and 50")
        return paginate(items, page, per_page)

    @app.get(PREFIX + "/zones/{zone_id}")
    def get_zone(_: Auth, zone_id: str) -> dict[str, Any]:
        return ok(public_zone(zone(zone_id)))

    # -- settings ------------------------------------------------------------------------------
    def setting_body(setting_id: str, s: dict[str, Any]) -> dict[str, Any]:
        return {"id": setting_id, "value": s["value"], "editable": True, "modified_on": s["modified_on"]}

    @app.get(PREFIX + "/zones/{zone_id}/settings/{setting_id}")
    def get_setting(_: Auth, zone_id: str, setting_id: str) -> dict[str, Any]:
        s = zone(zone_id)["settings"].get(setting_id)
        if s is None:
            raise CloudflareError(404, 1003, f"Undefined zone setting {setting_id}")
        return ok(setting_body(setting_id, s))

    @app.patch(PREFIX + "/zones/{zone_id}/settings/{setting_id}")
    async def edit_setting(_: Auth, zone_id: str, setting_id: str, request: Request) -> dict[str, Any]:
        zone(zone_id)
        if setting_id not in SETTINGS:
            raise CloudflareError(404, 1003, f"Undefined zone setting {setting_id}")
        body = await _json(request)
        value = body.get("value")
        if value not in SETTINGS[setting_id]:
            raise CloudflareError(400, 1007, f"Invalid value for zone setting {setting_id}")
        with world.update() as d:
            s = d["zones"][zone_id]["settings"][setting_id]
            s["value"], s["modified_on"] = value, now_ts()
            return ok(setting_body(setting_id, s))

    # -- DNS records -----------------------------------------------------------------------------
    def fqdn(z: dict[str, Any], name: str) -> str:
        name = name.lower().rstrip(".")
        if name in ("@", ""):
            return z["name"]
        return name if name == z["name"] or name.endswith("." + z["name"]) else f"{name}.{z['name']}"

    def record_of(zone_id: str, record_id: str) -> dict[str, Any]:
        zone(zone_id)
        r = world.data["records"].get(record_id)
        if r is None or r["zone_id"] != zone_id:
            raise CloudflareError(404, 81044, "Record does not exist.")
        return r

    def check_record(z: dict[str, Any], r: dict[str, Any]) -> None:
        if r["type"] not in RECORD_TYPES:
            raise CloudflareError(400, 9004, f"DNS record type {r['type']!r} is not supported by the twin")
        if not _valid_content(r["type"], str(r.get("content", ""))):
            raise CloudflareError(400, 9005, f"Content for {r['type']} record is invalid.")
        if not isinstance(r.get("proxied"), bool):
            raise CloudflareError(400, 9003, "Invalid 'proxied' value, must be a boolean")
        if r.get("comment") is not None and len(str(r["comment"])) > 100:
            raise CloudflareError(400, 9104, "Comment is too long (maximum 100 characters)")
        if r["type"] == "TXT" and r["proxied"]:
            raise CloudflareError(400, 9003, "TXT records cannot be proxied")
        clash = [
            o
            for o in world.data["records"].values()
            if o["zone_id"] == z["id"] and o["name"] == r["name"] and o["id"] != r.get("id")
        ]
        if clash and ("CNAME" in {r["type"], *(o["type"] for o in clash)}):
            raise CloudflareError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")

    @app.get(PREFIX + "/zones/{zone_id}/dns_records")
    def list_records(_: Auth, zone_id: str, request: Request, page: int = 1, per_page: int = 100) -> dict[str, Any]:
        z = zone(zone_id)
        q = request.query_params
        name_exact = q.get("name") or q.get("name.exact")
        tests = [
            (name_exact, lambda r, v: r["name"] == fqdn(z, v)),
            (q.get("name.contains"), lambda r, v: v.lower() in r["name"]),
            (q.get("name.startswith"), lambda r, v: r["name"].startswith(v.lower())),
            (q.get("name.endswith"), lambda r, v: r["name"].endswith(v.lower())),
            (q.get("type"), lambda r, v: r["type"] == v.upper()),
            (q.get("content") or q.get("content.exact"), lambda r, v: r["content"] == v),
            (q.get("proxied"), lambda r, v: r["proxied"] == (v.lower() == "true")),
        ]
        active = [(v, f) for v, f in tests if v is not None]
        any_match = q.get("match") == "any"
        with world.lock:
            items = []
            for r in world.data["records"].values():
                if r["zone_id"] != zone_id:
                    continue
                hits = [f(r, v) for v, f in active]
                if not active or (any(hits) if any_match else all(hits)):
                    items.append(dict(r))
        order = q.get("order", "type")
        if order not in ("type", "name", "content", "ttl", "proxied"):
            raise CloudflareError(400, 1004, f"invalid order {order!r}")
        items.sort(key=lambda r: (str(r[order]), r["name"], r["id"]), reverse=q.get("direction") == "desc")
        return paginate(items, page, per_page)

    @app.post(PREFIX + "/zones/{zone_id}/dns_records")
    async def create_record(_: Auth, zone_id: str, request: Request) -> dict[str, Any]:
        z = zone(zone_id)
        body = await _json(request)
        missing = [k for k in ("name", "type", "content") if not body.get(k)]
        if missing:
            raise CloudflareError(400, 9000, f"DNS record is missing {', '.join(missing)}")
        now = now_ts()
        r = {
            "id": hex_id("record", fqdn(z, body["name"]), body["type"], now),
            "zone_id": zone_id,
            "zone_name": z["name"],
            "name": fqdn(z, body["name"]),
            "type": str(body["type"]).upper(),
            "content": str(body["content"]).rstrip("."),
            "proxiable": True,
            "proxied": body.get("proxied", False),
            "ttl": int(body.get("ttl", 1)),
            "settings": {},
            "meta": {},
            "comment": body.get("comment"),
            "tags": body.get("tags", []),
            "created_on": now,
            "modified_on": now,
        }
        check_record(z, r)
        with world.update() as d:
            d["records"][r["id"]] = r
        return ok(r)

    @app.get(PREFIX + "/zones/{zone_id}/dns_records/{record_id}")
    def get_record(_: Auth, zone_id: str, record_id: str) -> dict[str, Any]:
        return ok(dict(record_of(zone_id, record_id)))

    async def write_record(zone_id: str, record_id: str, request: Request, *, overwrite: bool) -> dict[str, Any]:
        z = zone(zone_id)
        current = record_of(zone_id, record_id)
        body = await _json(request)
        if overwrite:
            missing = [k for k in ("name", "type", "content") if not body.get(k)]
            if missing:
                raise CloudflareError(400, 9000, f"DNS record is missing {', '.join(missing)}")
        editable = ("name", "type", "content", "proxied", "ttl", "comment", "tags")
        new = dict(current)
        if overwrite:
            new.update({"proxied": False, "ttl": 1, "comment": None, "tags": []})
        for k in editable:
            if k in body:
                new[k] = body[k]
        new["name"] = fqdn(z, str(new["name"]))
        new["type"] = str(new["type"]).upper()
        new["content"] = str(new["content"]).rstrip(".")
        check_record(z, new)
        new["modified_on"] = now_ts()
        with world.update() as d:
            d["records"][record_id] = new
        return ok(dict(new))

    @app.patch(PREFIX + "/zones/{zone_id}/dns_records/{record_id}")
    async def edit_record(_: Auth, zone_id: str, record_id: str, request: Request) -> dict[str, Any]:
        return await write_record(zone_id, record_id, request, overwrite=False)

    @app.put(PREFIX + "/zones/{zone_id}/dns_records/{record_id}")
    async def overwrite_record(_: Auth, zone_id: str, record_id: str, request: Request) -> dict[str, Any]:
        return await write_record(zone_id, record_id, request, overwrite=True)

    # -- Pages -----------------------------------------------------------------------------------
    def account(account_id: str) -> None:
        if account_id != world.account_id:
            raise CloudflareError(403, 10000, "Authentication error")

    def project(name: str) -> dict[str, Any]:
        p = world.data["pages"].get(name)
        if p is None:
            raise CloudflareError(
                404,
                8000007,
                "Project not found. The specified project name does not match any of your existing projects.",
            )
        return p

    def public_project(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in ("custom_domains", "account_id")}

    @app.get(PREFIX + "/accounts/{account_id}/pages/projects")
    def list_projects(_: Auth, account_id: str, page: int = 1, per_page: int = 10) -> dict[str, Any]:
        account(account_id)
        with world.lock:
            items = [public_project(p) for p in world.data["pages"].values()]
        return paginate(items, page, max(per_page, 5))

    @app.get(PREFIX + "/accounts/{account_id}/pages/projects/{name}")
    def get_project(_: Auth, account_id: str, name: str) -> dict[str, Any]:
        account(account_id)
        return ok(public_project(project(name)))

    @app.get(PREFIX + "/accounts/{account_id}/pages/projects/{name}/domains")
    def list_domains(_: Auth, account_id: str, name: str) -> dict[str, Any]:
        account(account_id)
        return ok(list(project(name)["custom_domains"]))

    # -- twin control (not Cloudflare: lets tests make an origin unhealthy) ----------------------
    @app.patch("/_twin/origins/{name}")
    async def origin_health(_: Auth, name: str, request: Request) -> dict[str, Any]:
        body = await _json(request)
        if not world.set_origin_health(name, bool(body.get("healthy", True))):
            raise CloudflareError(404, 404, f"unknown origin {name}")
        return ok(world.origin(name))

    @app.api_route(PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def no_route(_: Auth, path: str) -> dict[str, Any]:
        raise CloudflareError(400, 7000, "No route for that URI")

    return app


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise CloudflareError(400, 6007, "Malformed JSON in request body") from None
    if not isinstance(body, dict):
        raise CloudflareError(400, 6007, "Malformed JSON in request body")
    return body
