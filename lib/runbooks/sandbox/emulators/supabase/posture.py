"""Supabase twin: the project settings verify-platform-posture reads, shaped by the Management API spec.

- ``GET /v1/projects/{ref}/billing/addons`` (``ListProjectAddonsResponse``): the PITR add-on
  (``pitr_<days>``, the smallest variant covering the sandbox inventory's ``pitr_days``).
- ``GET /v1/projects/{ref}/ssl-enforcement`` (``SslEnforcementResponse``).
- ``GET /v1/projects/{ref}/network-restrictions`` (``NetworkRestrictionsResponse``): the inventory's CIDRs.
- ``GET /v1/projects/{ref}/config/auth`` (``AuthConfigResponse``, the fields the twin has: ``jwt_exp``).

Faults: ``pitr-window-short`` (the 7-day add-on, shorter than the inventory's window), ``ssl-not-enforced``,
``network-restrictions-drift`` (an extra, wider CIDR), ``auth-token-lifetime-long`` (``jwt_exp`` one day),
``signing-key-legacy`` (the project still signs with its legacy HS256 JWT secret: the signing-keys list
shows it ``in_use`` and the asymmetric key ``standby``; the twin cannot sign tokens with it, so sign-ins
fail in that twin).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from runbooks.sandbox.emulators.supabase.auth import CONFIG, SECTION
from runbooks.sandbox.emulators.supabase.project import authorize

PITR_VARIANTS = (7, 14, 28)
PRICES = {7: 100, 14: 200, 28: 400}
LONG_JWT_EXP = 86400
DRIFT_CIDR = "10.0.0.0/8"

router = APIRouter()


def _inventory() -> dict[str, Any]:
    import yaml

    from runbooks.paths import inventory_dir

    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text())
    return data if isinstance(data, dict) else {}


def on_startup(ctx: Any) -> None:
    inv = _inventory()
    days = int(inv.get("pitr_days", 7))
    covering = next((v for v in PITR_VARIANTS if v >= days), PITR_VARIANTS[-1])
    supabase = inv.get("platform", {}).get("supabase", {})
    ctx.extra["posture"] = {
        "pitr_days": PITR_VARIANTS[0] if "pitr-window-short" in ctx.args.faults else covering,
        "ssl": "ssl-not-enforced" not in ctx.args.faults and bool(supabase.get("ssl_enforced", True)),
        "cidrs": list(supabase.get("allowed_cidrs", ["0.0.0.0/0", "::/0"]))
        + ([DRIFT_CIDR] if "network-restrictions-drift" in ctx.args.faults else []),
    }
    if "auth-token-lifetime-long" in ctx.args.faults:
        with ctx.state.update() as data:
            data.setdefault(CONFIG, {})["jwt_exp"] = LONG_JWT_EXP
    if "signing-key-legacy" in ctx.args.faults:
        _legacy_secret_in_use(ctx)


def _legacy_secret_in_use(ctx: Any) -> None:
    """The legacy HS256 secret in use, the asymmetric key demoted to standby (once)."""
    with ctx.state.update() as data:
        keys = data.setdefault(SECTION, {})
        if any(k.get("algorithm") == "HS256" for k in keys.values()):
            return
        for k in keys.values():
            if k.get("status") == "in_use":
                k["status"] = "standby"
        t = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        kid = str(uuid.uuid4())
        keys[kid] = {
            "id": kid,
            "algorithm": "HS256",
            "status": "in_use",
            "public_jwk": None,
            "created_at": t,
            "updated_at": t,
        }


def _pitr_addon(days: int) -> dict[str, Any]:
    return {
        "type": "pitr",
        "variant": {
            "id": f"pitr_{days}",
            "name": f"{days} days",
            "price": {
                "description": f"${PRICES[days]}/month",
                "type": "fixed",
                "interval": "monthly",
                "amount": PRICES[days],
            },
        },
    }


@router.get("/v1/projects/{ref}/billing/addons")
def list_addons(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    selected = [_pitr_addon(ctx.extra["posture"]["pitr_days"])] if "pitr-disabled" not in ctx.args.faults else []
    available = [
        {
            "type": "pitr",
            "name": "Point in time recovery",
            "variants": [_pitr_addon(d)["variant"] for d in PITR_VARIANTS],
        }
    ]
    return {"selected_addons": selected, "available_addons": available}


@router.get("/v1/projects/{ref}/ssl-enforcement")
def ssl_enforcement(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    return {"currentConfig": {"database": ctx.extra["posture"]["ssl"]}, "appliedSuccessfully": True}


@router.get("/v1/projects/{ref}/network-restrictions")
def network_restrictions(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    cidrs = ctx.extra["posture"]["cidrs"]
    return {
        "entitlement": "allowed",
        "config": {
            "dbAllowedCidrs": [c for c in cidrs if ":" not in c],
            "dbAllowedCidrsV6": [c for c in cidrs if ":" in c],
        },
        "status": "applied",
        "applied_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


@router.get("/v1/projects/{ref}/config/auth")
def auth_config(ref: str, request: Request) -> dict[str, Any]:
    ctx = authorize(request, ref)
    return {"jwt_exp": int(ctx.state.section(CONFIG).get("jwt_exp", 3600))}
