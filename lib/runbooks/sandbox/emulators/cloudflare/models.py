"""The Cloudflare account as its API v4 sees it: state, behaviour and validation, no HTTP (moto's models).

:class:`CloudflareBackend` owns what the routes do: zones, DNS records (their rules, apart from state, in
:mod:`.record_rules`), the zone settings ``ssl``, ``always_use_https`` and ``min_tls_version``, Pages projects and
their custom domains, API tokens (managing them needs the API Tokens permission, which only the runbooks'
admin token has) and the twin's origin health. Failures raise :class:`CloudflareError` with Cloudflare's
status, code and message; lists come back as a :class:`~.pagination.Page`. A request body is passed as decoded JSON
(``None`` when it was not JSON) and validated here. State lives in the edge's shared
:class:`~runbooks.sandbox.edge.world.EdgeWorld`, so DNS and HTTPS see every change.
"""

from __future__ import annotations

from typing import Any

from runbooks.sandbox.edge.world import EdgeWorld, hex_id, now_ts, token_permissions
from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError
from runbooks.sandbox.emulators.cloudflare.pagination import Page, paginate
from runbooks.sandbox.emulators.cloudflare.record_rules import (
    EDITABLE,
    RecordQuery,
    check_record,
    fqdn,
    require_fields,
)

SETTINGS = {
    "ssl": ("off", "flexible", "full", "strict"),
    "always_use_https": ("on", "off"),
    "min_tls_version": ("1.0", "1.1", "1.2", "1.3"),
}


# -- validation ------------------------------------------------------------------------------------
def request_object(body: Any) -> dict[str, Any]:
    """A request body must be a JSON object (``body`` is None when it was not JSON at all)."""
    if not isinstance(body, dict):
        raise CloudflareError(400, 6007, "Malformed JSON in request body")
    return body


def _check_policies(policies: Any) -> None:
    if not isinstance(policies, list) or not policies:
        raise CloudflareError(400, 1004, "policies: at least one policy is required")
    for i, pol in enumerate(policies):
        groups = pol.get("permission_groups") if isinstance(pol, dict) else None
        resources = pol.get("resources") if isinstance(pol, dict) else None
        if not isinstance(pol, dict) or pol.get("effect") not in ("allow", "deny"):
            raise CloudflareError(400, 1004, f"policies[{i}].effect must be allow or deny")
        if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) and g.get("id") for g in groups):
            raise CloudflareError(400, 1004, f"policies[{i}].permission_groups: a list of {{id}} is required")
        if not isinstance(resources, dict) or not resources:
            raise CloudflareError(400, 1004, f"policies[{i}].resources: a non-empty object is required")


# -- the account -------------------------------------------------------------------------------------
class CloudflareBackend:
    """What each API call does to the account held by ``world`` (callers pass the authenticated token)."""

    def __init__(self, world: EdgeWorld):
        self.world = world

    # -- tokens --------------------------------------------------------------------------------------
    def authenticate(self, value: str) -> dict[str, Any]:
        """The active token whose value is ``value`` (the caller of every authenticated route)."""
        t = self.world.verify_token(value)
        if t is None:
            raise CloudflareError(403, 10000, "Authentication error")
        return dict(t)

    def verify(self, value: str) -> dict[str, Any]:
        """``/user/tokens/verify``: the token's id, status and validity, or 401 for anything else."""
        t = self.world.verify_token(value) if value else None
        if t is None:
            raise CloudflareError(401, 1000, "Invalid API Token")
        return {"id": t["id"], "status": t["status"], "not_before": t["not_before"], "expires_on": t["expires_on"]}

    @staticmethod
    def require(caller: dict[str, Any], *allowed: str) -> None:
        """Refuse a caller whose token grants none of the ``allowed`` permission groups."""
        if not token_permissions(caller) & set(allowed):
            raise CloudflareError(403, 9109, "Unauthorized to access requested resource")

    @staticmethod
    def public_token(t: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in t.items() if k != "value_hash"}

    def _token(self, token_id: str) -> dict[str, Any]:
        t = self.world.token(token_id)
        if t is None:
            raise CloudflareError(404, 1003, "Token not found")
        return t

    def list_tokens(self, caller: dict[str, Any], page: int, per_page: int) -> Page:
        self.require(caller, "API Tokens Read", "API Tokens Write")
        with self.world.lock:
            items = [self.public_token(t) for t in self.world.data["tokens"].values()]
        return paginate(items, page, per_page)

    def create_token(self, caller: dict[str, Any], body: Any) -> dict[str, Any]:
        """A new token; the answer is the only place its value appears."""
        self.require(caller, "API Tokens Write")
        body = request_object(body)
        name, policies = body.get("name"), body.get("policies")
        if not isinstance(name, str) or not name.strip() or len(name) > 120:
            raise CloudflareError(400, 1004, "name: a non-empty string of at most 120 characters is required")
        _check_policies(policies)
        t, value = self.world.create_token(
            name.strip(),
            policies,
            condition=body.get("condition") if isinstance(body.get("condition"), dict) else None,
            not_before=body.get("not_before"),
            expires_on=body.get("expires_on"),
        )
        return {**self.public_token(t), "value": value}

    def get_token(self, caller: dict[str, Any], token_id: str) -> dict[str, Any]:
        self.require(caller, "API Tokens Read", "API Tokens Write")
        return self.public_token(self._token(token_id))

    def delete_token(self, caller: dict[str, Any], token_id: str) -> dict[str, Any]:
        self.require(caller, "API Tokens Write")
        self._token(token_id)
        self.world.delete_token(token_id)
        return {"id": token_id}

    def roll_token(self, caller: dict[str, Any], token_id: str) -> str:
        """A new value for the token; the old one is refused from now on."""
        self.require(caller, "API Tokens Write")
        value = self.world.roll_token(token_id)
        if value is None:
            raise CloudflareError(404, 1003, "Token not found")
        return value

    # -- zones and settings ----------------------------------------------------------------------------
    def zone(self, zone_id: str) -> dict[str, Any]:
        z: dict[str, Any] | None = self.world.data["zones"].get(zone_id)
        if z is None:
            raise CloudflareError(
                400, 7003, "Could not route to /zones/" + zone_id + ", perhaps your object identifier is invalid?"
            )
        return z

    @staticmethod
    def public_zone(z: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in z.items() if k != "settings"}

    def list_zones(self, name: str | None, page: int, per_page: int) -> Page:
        with self.world.lock:
            items = [self.public_zone(z) for z in self.world.data["zones"].values() if name in (None, z["name"])]
        if not 5 <= per_page <= 50:
            raise CloudflareError(400, 1004, "per_page must be between 5 and 50")
        return paginate(items, page, per_page)

    def get_zone(self, zone_id: str) -> dict[str, Any]:
        return self.public_zone(self.zone(zone_id))

    @staticmethod
    def _setting(setting_id: str, s: dict[str, Any]) -> dict[str, Any]:
        return {"id": setting_id, "value": s["value"], "editable": True, "modified_on": s["modified_on"]}

    def get_setting(self, zone_id: str, setting_id: str) -> dict[str, Any]:
        s = self.zone(zone_id)["settings"].get(setting_id)
        if s is None:
            raise CloudflareError(404, 1003, f"Undefined zone setting {setting_id}")
        return self._setting(setting_id, s)

    def edit_setting(self, zone_id: str, setting_id: str, body: Any) -> dict[str, Any]:
        self.zone(zone_id)
        if setting_id not in SETTINGS:
            raise CloudflareError(404, 1003, f"Undefined zone setting {setting_id}")
        value = request_object(body).get("value")
        if value not in SETTINGS[setting_id]:
            raise CloudflareError(400, 1007, f"Invalid value for zone setting {setting_id}")
        with self.world.update() as d:
            s = d["zones"][zone_id]["settings"][setting_id]
            s["value"], s["modified_on"] = value, now_ts()
            return self._setting(setting_id, s)

    # -- DNS records -----------------------------------------------------------------------------------
    def _record(self, zone_id: str, record_id: str) -> dict[str, Any]:
        self.zone(zone_id)
        r: dict[str, Any] | None = self.world.data["records"].get(record_id)
        if r is None or r["zone_id"] != zone_id:
            raise CloudflareError(404, 81044, "Record does not exist.")
        return r

    def _check(self, zone: dict[str, Any], r: dict[str, Any]) -> None:
        check_record(r, [o for o in self.world.data["records"].values() if o["zone_id"] == zone["id"]])

    def list_records(self, zone_id: str, query: RecordQuery, page: int, per_page: int) -> Page:
        z = self.zone(zone_id)
        with self.world.lock:
            items = [
                dict(r)
                for r in self.world.data["records"].values()
                if r["zone_id"] == zone_id and query.matches(r, z["name"])
            ]
        query.check_order()
        items.sort(key=lambda r: (str(r[query.order]), r["name"], r["id"]), reverse=query.descending)
        return paginate(items, page, per_page)

    def create_record(self, zone_id: str, body: Any) -> dict[str, Any]:
        z = self.zone(zone_id)
        body = request_object(body)
        require_fields(body)
        now = now_ts()
        r = {
            "id": hex_id("record", fqdn(z["name"], body["name"]), body["type"], now),
            "zone_id": zone_id,
            "zone_name": z["name"],
            "name": fqdn(z["name"], body["name"]),
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
        self._check(z, r)
        with self.world.update() as d:
            d["records"][r["id"]] = r
        return r

    def get_record(self, zone_id: str, record_id: str) -> dict[str, Any]:
        return dict(self._record(zone_id, record_id))

    def write_record(self, zone_id: str, record_id: str, body: Any, *, overwrite: bool) -> dict[str, Any]:
        """Edit (PATCH: fields not sent are kept) or overwrite (PUT: fields not sent take their defaults)."""
        z = self.zone(zone_id)
        current = self._record(zone_id, record_id)
        body = request_object(body)
        if overwrite:
            require_fields(body)
        new = dict(current)
        if overwrite:
            new.update({"proxied": False, "ttl": 1, "comment": None, "tags": []})
        for k in EDITABLE:
            if k in body:
                new[k] = body[k]
        new["name"] = fqdn(z["name"], str(new["name"]))
        new["type"] = str(new["type"]).upper()
        new["content"] = str(new["content"]).rstrip(".")
        self._check(z, new)
        new["modified_on"] = now_ts()
        with self.world.update() as d:
            d["records"][record_id] = new
        return dict(new)

    # -- Pages -----------------------------------------------------------------------------------------
    def _account(self, account_id: str) -> None:
        if account_id != self.world.account_id:
            raise CloudflareError(403, 10000, "Authentication error")

    def _project(self, name: str) -> dict[str, Any]:
        p: dict[str, Any] | None = self.world.data["pages"].get(name)
        if p is None:
            raise CloudflareError(
                404,
                8000007,
                "Project not found. The specified project name does not match any of your existing projects.",
            )
        return p

    @staticmethod
    def public_project(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in ("custom_domains", "account_id")}

    def list_projects(self, account_id: str, page: int, per_page: int) -> Page:
        """Pages projects; a ``per_page`` under 5 is raised to 5 (not refused)."""
        self._account(account_id)
        with self.world.lock:
            items = [self.public_project(p) for p in self.world.data["pages"].values()]
        return paginate(items, page, max(per_page, 5))

    def get_project(self, account_id: str, name: str) -> dict[str, Any]:
        self._account(account_id)
        return self.public_project(self._project(name))

    def list_domains(self, account_id: str, name: str) -> list[dict[str, Any]]:
        self._account(account_id)
        return list(self._project(name)["custom_domains"])

    # -- twin control ----------------------------------------------------------------------------------
    def set_origin_health(self, name: str, body: Any) -> dict[str, Any] | None:
        """Make an origin (un)healthy (``{"healthy": bool}``, default true); not part of Cloudflare's API."""
        healthy = bool(request_object(body).get("healthy", True))
        if not self.world.set_origin_health(name, healthy):
            raise CloudflareError(404, 404, f"unknown origin {name}")
        return self.world.origin(name)
