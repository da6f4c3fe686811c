"""What the twin's edge holds: the Cloudflare account (zone, records, settings, Pages, tokens) and the origins.

One :class:`EdgeWorld` lives in the edge process and is shared, under one lock, by the Cloudflare API
emulator, the authoritative DNS server and the HTTPS endpoints, so a record edited through the API is
what the next DNS answer and the next HTTPS request see. It is persisted to ``<root>/edge/state.json``
so a restarted edge keeps its records and rolled tokens. Faults are applied once, when the world is built.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from runbooks.inventory.models import Hostname, Posture
from runbooks.paths import inventory_dir
from runbooks.sandbox.emulators.common import JsonState

#: fault name -> what it changes in the twin (the component publishes this catalogue)
FAULTS: dict[str, str] = {
    "api-proxied": "the api record is proxied (breaks server-sent events; the stream arrives buffered)",
    "app-dns-only": "the app record is DNS-only (exposes the origin's address)",
    "cert-expiring": "the app certificate expires in 3 days",
    "cert-wrong-name": "the ops certificate covers another name (ops.runspectral.net)",
    "ssl-flexible": "zone SSL mode is flexible (edge to origin in clear text)",
    "cookie-host-only": "app and ops set the session cookie without Domain=runspectral.com",
    "codex-no-function": "the codex Pages project has no Function (the JWKS gate is not enforced)",
}

#: which hostname label each certificate fault affects
CERT_EXPIRING_LABEL = "app"
CERT_WRONG_NAME_LABEL = "ops"

PROXY_V4 = ipaddress.ip_network("104.16.0.0/13")
PROXY_V6 = ipaddress.ip_network("2606:4700::/32")
#: RFC 2544 benchmarking range: the origins' addresses, outside every Cloudflare range
ORIGIN_V4 = ipaddress.ip_network("198.18.0.0/15")


def _ts() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hex_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def _offset(name: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(name.lower().encode()).digest()[:8], "big") % size


def proxy_addresses(name: str) -> tuple[str, str]:
    """The (A, AAAA) Cloudflare answers for a proxied ``name``: stable, inside its published ranges."""
    v4 = PROXY_V4.network_address + _offset(name, PROXY_V4.num_addresses - 2) + 1
    v6 = PROXY_V6.network_address + _offset(name, 2**64) + 1
    return str(v4), str(v6)


def origin_address(name: str) -> str:
    return str(ORIGIN_V4.network_address + _offset(name, ORIGIN_V4.num_addresses - 2) + 1)


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


#: the two tokens the twin starts with (see :meth:`EdgeWorld.build`)
ADMIN_TOKEN_NAME = "spectral-runbooks"
RUNTIME_TOKEN_NAME = "spectral-runtime"
#: the twin's user (owner of the user-level API tokens)
USER_ID = hex_id("user", "spectral-twin")
#: permission groups the twin's tokens use: name -> Cloudflare's permission group id
PERMISSION_GROUPS: dict[str, str] = {
    "DNS Write": "4755a26eedb94da69e1066d98aa820be",
    "DNS Read": "82e64a83756745bbbb1c9c2701bf816b",
    "Zone Read": "c8fed203ed3043cba015a93ad1616f1f",
    "API Tokens Write": "686d18d5ac6c441c867cbf6771e58a0a",
    "API Tokens Read": "0cc3a61731504c89b99ec1be78b77aa0",
}
_GROUP_NAMES = {v: k for k, v in PERMISSION_GROUPS.items()}


def _policy(groups: list[Any], resources: dict[str, Any], effect: str = "allow") -> dict[str, Any]:
    """A token policy; ``groups`` are permission group ids or ``{"id": ...}`` objects (named if known)."""
    ids = [g["id"] if isinstance(g, dict) else str(g) for g in groups]
    return {
        "id": secrets.token_hex(16),
        "effect": effect,
        "permission_groups": [{"id": i, "name": _GROUP_NAMES.get(i, "")} for i in ids],
        "resources": dict(resources),
    }


def _token_record(
    name: str, policies: list[dict[str, Any]], value: str, now: str, *, unique: str = ""
) -> dict[str, Any]:
    token_id = hex_id("token", name, *([unique] if unique else []))
    return {
        "id": token_id,
        "name": name,
        "status": "active",
        "issued_on": now,
        "modified_on": now,
        "last_used_on": None,
        "not_before": None,
        "expires_on": None,
        "policies": policies,
        "condition": {},
        "value_hash": token_hash(value),
    }


def token_permissions(t: dict[str, Any]) -> set[str]:
    """Names of the permission groups a token's ``allow`` policies grant (unknown ids by id)."""
    out: set[str] = set()
    for p in t.get("policies", []):
        if p.get("effect") == "allow":
            out |= {_GROUP_NAMES.get(g["id"], g["id"]) for g in p.get("permission_groups", [])}
    return out


def inventory_hostnames(environment: str = "sandbox") -> tuple[str, str, list[Hostname]]:
    """(zone, cookie domain, hostnames) as the inventory file says, read without the sandbox overlay."""
    raw = yaml.safe_load((inventory_dir() / f"{environment}.yaml").read_text())
    return raw["zone"], raw["cookie_domain"], [Hostname.model_validate(h) for h in raw["hostnames"]]


def generated_hostnames(zone: str, count: int) -> list[Hostname]:
    """``count`` synthetic hostnames (for the benchmark): every fourth DNS-only, the rest proxied."""
    out = []
    for i in range(count):
        dns_only = i % 4 == 3
        out.append(
            Hostname(
                name=f"gen-{i:03d}.{zone}",
                audience="generated",
                target=f"spectral-gen-{i:03d}.onrender.com",
                posture=Posture.DNS_ONLY if dns_only else Posture.PROXIED,
            )
        )
    return out


class EdgeWorld:
    """The shared state, with the lookups the DNS server and the HTTPS endpoints need."""

    def __init__(self, path: Path):
        self._store = JsonState(path)
        self.lock = threading.RLock()

    @property
    def data(self) -> dict[str, Any]:
        return self._store.data

    @contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        with self.lock, self._store.update() as d:
            yield d

    @property
    def built(self) -> bool:
        return bool(self.data.get("zones"))

    # -- construction ---------------------------------------------------------------------------
    def build(
        self,
        zone: str,
        hostnames: list[Hostname],
        faults: frozenset[str],
        bootstrap_token: str,
        *,
        cookie_domain: str | None = None,
        runtime_token: str | None = None,
    ) -> None:
        """Create the account as the inventory says, then apply ``faults``. No-op if already built.

        Two API tokens exist from the start: the runbooks' admin token (``bootstrap_token``: DNS write on the
        zone, and the user's API Tokens write permission, so it can create, roll and delete tokens) and, if
        ``runtime_token`` is given, the application's own token (:data:`RUNTIME_TOKEN_NAME`: zone and DNS
        read), which ``rotate-keys`` replaces by creating a new token and deleting the old one."""
        if self.built:
            return
        now = _ts()
        account_id = hex_id("account", zone)
        zone_id = hex_id("zone", zone)
        with self.update() as d:
            d["account"] = {"id": account_id, "name": "Spectral (twin)"}
            d["faults"] = sorted(faults)
            d["cookie_domain"] = cookie_domain or zone
            d["sites"] = {
                h.name: {
                    "label": h.label,
                    "sets_session_cookie": h.sets_session_cookie,
                    "streams_events": h.streams_events,
                    "pages_project": h.pages_project,
                }
                for h in hostnames
            }
            d["zones"] = {
                zone_id: {
                    "id": zone_id,
                    "name": zone,
                    "status": "active",
                    "paused": False,
                    "type": "full",
                    "development_mode": 0,
                    "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                    "original_name_servers": None,
                    "original_registrar": None,
                    "original_dnshost": None,
                    "created_on": now,
                    "modified_on": now,
                    "activated_on": now,
                    "account": {"id": account_id, "name": "Spectral (twin)"},
                    "owner": {"id": None, "type": "organization", "email": None},
                    "permissions": ["#zone:read", "#zone:edit", "#dns_records:edit"],
                    "plan": {
                        "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                        "name": "Free Website",
                        "price": 0,
                        "currency": "USD",
                        "frequency": "",
                        "is_subscribed": False,
                        "can_subscribe": False,
                        "legacy_id": "free",
                        "legacy_discount": False,
                        "externally_managed": False,
                    },
                    "meta": {
                        "step": 2,
                        "custom_certificate_quota": 0,
                        "page_rule_quota": 3,
                        "phishing_detected": False,
                    },
                    "settings": {
                        "ssl": {"value": "flexible" if "ssl-flexible" in faults else "strict", "modified_on": now},
                        "always_use_https": {"value": "on", "modified_on": now},
                        "min_tls_version": {"value": "1.2", "modified_on": now},
                    },
                }
            }
            d["records"] = {}
            d["origins"] = {}
            d["pages"] = {}
            for h in hostnames:
                proxied = h.posture is Posture.PROXIED
                if (h.label == "api" and "api-proxied" in faults) or (h.label == "app" and "app-dns-only" in faults):
                    proxied = not proxied
                rid = hex_id("record", h.name)
                d["records"][rid] = {
                    "id": rid,
                    "zone_id": zone_id,
                    "zone_name": zone,
                    "name": h.name,
                    "type": h.record_type,
                    "content": h.target,
                    "proxiable": True,
                    "proxied": proxied,
                    "ttl": 1,
                    "settings": {},
                    "meta": {},
                    "comment": None,
                    "tags": [],
                    "created_on": now,
                    "modified_on": now,
                }
                for origin in {h.target, *(h.blue_green or {}).values()}:
                    if origin.endswith(".pages.dev"):
                        continue
                    colour = next((c for c, o in (h.blue_green or {}).items() if o == origin), None)
                    d["origins"][origin] = {
                        "address": origin_address(origin),
                        "healthy": True,
                        "colour": colour,
                        "serves": h.label,
                    }
                if h.pages_project:
                    with_function = h.pages_function and "codex-no-function" not in faults
                    d["pages"][h.pages_project] = self._pages_project(h, account_id, zone_id, with_function, now)
            admin = _token_record(
                ADMIN_TOKEN_NAME,
                [
                    _policy([PERMISSION_GROUPS["DNS Write"]], {f"com.cloudflare.api.account.zone.{zone_id}": "*"}),
                    _policy([PERMISSION_GROUPS["API Tokens Write"]], {f"com.cloudflare.api.user.{USER_ID}": "*"}),
                ],
                bootstrap_token,
                now,
            )
            d["tokens"] = {admin["id"]: admin}
            if runtime_token:
                runtime = _token_record(
                    RUNTIME_TOKEN_NAME,
                    [
                        _policy(
                            [PERMISSION_GROUPS["Zone Read"], PERMISSION_GROUPS["DNS Read"]],
                            {f"com.cloudflare.api.account.zone.{zone_id}": "*"},
                        )
                    ],
                    runtime_token,
                    now,
                )
                d["tokens"][runtime["id"]] = runtime

    @staticmethod
    def _pages_project(h: Hostname, account_id: str, zone_id: str, with_function: bool, now: str) -> dict[str, Any]:
        name = h.pages_project or ""
        deployment: dict[str, Any] = {
            "id": hex_id("deployment", name),
            "short_id": hex_id("deployment", name)[:8],
            "project_id": hex_id("project", name),
            "project_name": name,
            "environment": "production",
            "url": f"https://{hex_id('deployment', name)[:8]}.{name}.pages.dev",
            "created_on": now,
            "modified_on": now,
            "aliases": None,
            "is_skipped": False,
            "uses_functions": with_function,
            "latest_stage": {"name": "deploy", "status": "success", "started_on": now, "ended_on": now},
            "stages": [],
            "deployment_trigger": {"type": "ad_hoc", "metadata": {"branch": "main"}},
            "build_config": {},
            "source": {},
            "env_vars": {},
        }
        return {
            "id": hex_id("project", name),
            "name": name,
            "subdomain": f"{name}.pages.dev",
            "domains": [h.name],
            "created_on": now,
            "production_branch": "main",
            "framework": "",
            "framework_version": "",
            "preview_script_name": "",
            "production_script_name": "",
            "uses_functions": with_function,
            "deployment_configs": {"preview": {}, "production": {}},
            "latest_deployment": deployment,
            "canonical_deployment": deployment,
            "custom_domains": [
                {
                    "id": hex_id("domain", h.name),
                    "domain_id": hex_id("domain", h.name),
                    "name": h.name,
                    "status": "active",
                    "certificate_authority": "google",
                    "created_on": now,
                    "zone_tag": zone_id,
                    "validation_data": {"method": "http", "status": "active"},
                    "verification_data": {"status": "active"},
                }
            ],
            "account_id": account_id,
        }

    # -- lookups (callers hold no lock; each reads a consistent snapshot) --------------------------
    @property
    def account_id(self) -> str:
        return str(self.data["account"]["id"])

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(self.data.get("faults", []))

    @property
    def latency(self) -> float:
        return float(self.data.get("latency_ms", 0)) / 1000.0

    def set_latency_ms(self, ms: float) -> None:
        with self.update() as d:
            d["latency_ms"] = ms

    def zone_names(self) -> list[str]:
        with self.lock:
            return [z["name"] for z in self.data["zones"].values()]

    def record(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            name = name.lower().rstrip(".")
            return next((dict(r) for r in self.data["records"].values() if r["name"] == name), None)

    def origin(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            o = self.data["origins"].get(name.lower().rstrip("."))
            return dict(o) if o else None

    def pages_by_domain(self, host: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(p) for p in self.data["pages"].values() if host in p["domains"]), None)

    def site(self, host: str) -> dict[str, Any] | None:
        with self.lock:
            s = self.data.get("sites", {}).get(host)
            return dict(s) if s else None

    @property
    def cookie_domain(self) -> str:
        return str(self.data.get("cookie_domain", ""))

    def hostnames(self) -> list[str]:
        with self.lock:
            return [r["name"] for r in self.data["records"].values()]

    def verify_token(self, value: str) -> dict[str, Any] | None:
        h = token_hash(value)
        with self.lock:
            return next(
                (dict(t) for t in self.data["tokens"].values() if t["value_hash"] == h and t["status"] == "active"),
                None,
            )

    def token(self, token_id: str) -> dict[str, Any] | None:
        with self.lock:
            t = self.data["tokens"].get(token_id)
            return dict(t) if t else None

    def create_token(
        self,
        name: str,
        policies: list[dict[str, Any]],
        *,
        condition: dict[str, Any] | None = None,
        not_before: str | None = None,
        expires_on: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A new active token: (its record, its value). The value exists only in this answer."""
        value = secrets.token_urlsafe(30)
        now = _ts()
        t = _token_record(
            name,
            [_policy(p["permission_groups"], p["resources"], p["effect"]) for p in policies],
            value,
            now,
            unique=secrets.token_hex(8),
        )
        t.update({"condition": condition or {}, "not_before": not_before, "expires_on": expires_on})
        with self.update() as d:
            d["tokens"][t["id"]] = t
        return dict(t), value

    def delete_token(self, token_id: str) -> bool:
        """Delete a token: its value is refused from the next request on."""
        with self.update() as d:
            return d["tokens"].pop(token_id, None) is not None

    def roll_token(self, token_id: str) -> str | None:
        value = secrets.token_urlsafe(30)
        with self.update() as d:
            t = d["tokens"].get(token_id)
            if t is None:
                return None
            t["value_hash"], t["modified_on"] = token_hash(value), _ts()
        return value

    def set_origin_health(self, name: str, healthy: bool) -> bool:
        with self.update() as d:
            o = d["origins"].get(name)
            if o is None:
                return False
            o["healthy"] = healthy
            return True


now_ts = _ts
