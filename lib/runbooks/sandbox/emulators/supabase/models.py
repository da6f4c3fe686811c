"""The Supabase project as its Management API and project API see it: state, behaviour and validation, no
HTTP (moto's models).

:class:`SupabaseBackend` is what the routers call. It holds the project (facts, status, services' health),
authenticates callers (the Management API's access token, the project API's keys), answers the posture
settings verify-platform-posture reads, signs in users, and composes one state model per area:
:class:`~.api_keys.ApiKeys`, :class:`~.signing_keys.SigningKeys`, :class:`~.users.Users` and
:class:`~.restores.Restores` (backups, point-in-time recovery and restore points on the twin's Postgres,
through a :class:`~.database.Database`). Failures raise :class:`~.errors.SupabaseError` (HTTP status and
message). A request body is passed as decoded JSON and validated by the models.

State: the JSON file of :class:`~runbooks.sandbox.emulators.common.JsonState` (sections in :mod:`.values`);
the project's status (``ACTIVE_HEALTHY``, ``RESTORING`` during a recovery, ``RESTORE_FAILED``) and posture
are in memory. On creation the backend makes what a new project has and writes the sandbox secrets that
hold it: one publishable and one secret API key (``supabase_publishable_key``, ``supabase_secret_key``),
an in-use ES256 signing key and a probe user (password: ``supabase_probe_password``).

Faults: ``pitr-disabled`` (restore-pitr refused, no PITR add-on), ``pitr-window-short`` (the 7-day add-on),
``ssl-not-enforced``, ``network-restrictions-drift`` (an extra, wider CIDR), ``auth-token-lifetime-long``
(``jwt_exp`` one day), ``signing-key-legacy`` (the legacy HS256 secret in use, the asymmetric key standby:
the twin cannot sign with it, so sign-ins fail).
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from runbooks.sandbox.emulators.common import JsonState, write_secret
from runbooks.sandbox.emulators.supabase.api_keys import ApiKeys
from runbooks.sandbox.emulators.supabase.database import Database
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.restores import ACTIVE, RESTORING, Restores
from runbooks.sandbox.emulators.supabase.signing import sign, verify
from runbooks.sandbox.emulators.supabase.signing_keys import SigningKeys
from runbooks.sandbox.emulators.supabase.users import PROBE_EMAIL, Users
from runbooks.sandbox.emulators.supabase.values import now, request_object

__all__ = ["PROBE_EMAIL", "Posture", "SupabaseBackend"]

ACCESS_TOKEN_SECRET = "supabase_access_token"
BOOTSTRAP_SECRETS = {"publishable": "supabase_publishable_key", "secret": "supabase_secret_key"}
PROBE_PASSWORD_SECRET = "supabase_probe_password"
SERVICES = ("auth", "db", "db_postgres_user", "pooler", "realtime", "rest", "storage", "pg_bouncer")
DB_SERVICES = ("db", "db_postgres_user", "pooler", "pg_bouncer")
PITR_VARIANTS = (7, 14, 28)
PITR_PRICES = {7: 100, 14: 200, 28: 400}
DRIFT_CIDR = "10.0.0.0/8"


@dataclass(frozen=True)
class Posture:
    """The project settings verify-platform-posture reads."""

    pitr_days: int
    ssl: bool
    cidrs: tuple[str, ...]

    @classmethod
    def of(cls, inventory: Mapping[str, Any], faults: frozenset[str]) -> Posture:
        """As the sandbox inventory describes the project (the smallest PITR add-on that covers its
        ``pitr_days``, ``platform.supabase``), shaped by the faults."""
        days = int(inventory.get("pitr_days", 7))
        covering = next((v for v in PITR_VARIANTS if v >= days), PITR_VARIANTS[-1])
        supabase = inventory.get("platform", {}).get("supabase", {})
        return cls(
            pitr_days=PITR_VARIANTS[0] if "pitr-window-short" in faults else covering,
            ssl="ssl-not-enforced" not in faults and bool(supabase.get("ssl_enforced", True)),
            cidrs=tuple(supabase.get("allowed_cidrs", ["0.0.0.0/0", "::/0"]))
            + ((DRIFT_CIDR,) if "network-restrictions-drift" in faults else ()),
        )


def pitr_addon(days: int) -> dict[str, Any]:
    price = PITR_PRICES[days]
    return {
        "type": "pitr",
        "variant": {
            "id": f"pitr_{days}",
            "name": f"{days} days",
            "price": {"description": f"${price}/month", "type": "fixed", "interval": "monthly", "amount": price},
        },
    }


class SupabaseBackend:
    """What each API call does to the project held under the sandbox root ``root``."""

    def __init__(
        self,
        *,
        root: Path,
        state: JsonState,
        project: Mapping[str, Any],
        faults: frozenset[str],
        inventory: Mapping[str, Any],
        database: Database,
    ):
        self.root, self.state, self.faults, self.database = root, state, faults, database
        self.project = dict(project)
        self.status = ACTIVE
        self.posture = Posture.of(inventory, faults)
        self.keys = ApiKeys(state)
        self.signing_keys = SigningKeys(state)
        self.users = Users(state)
        self.restores = Restores(state, database, self._set_status)
        for kind, value in self.keys.bootstrap().items():
            write_secret(root, BOOTSTRAP_SECRETS[kind], value)
        self.signing_keys.bootstrap(legacy_in_use="signing-key-legacy" in faults)
        password = self.users.bootstrap(long_tokens="auth-token-lifetime-long" in faults)
        if password is not None:
            write_secret(root, PROBE_PASSWORD_SECRET, password)

    def _set_status(self, status: str) -> None:
        self.status = status

    # -- callers -----------------------------------------------------------------------------------------
    @property
    def ref(self) -> str | None:
        ref = self.project.get("ref")
        return str(ref) if ref else None

    def authorize(self, token: str, ref: str) -> None:
        """A Management API call: ``token`` must be the access token (the sandbox secret), ``ref`` the project's."""
        token_file = self.root / "secrets" / ACCESS_TOKEN_SECRET
        expected = token_file.read_text().strip() if token_file.is_file() else ""
        if not expected or not token or not hmac.compare_digest(token, expected):
            raise SupabaseError(401, "Unauthorized")
        if ref != self.ref:
            raise SupabaseError(404, f"project {ref} not found")

    def api_key_of(self, value: str) -> dict[str, Any]:
        """A project API call: ``value`` must be a live API key (401 otherwise, a deleted key too)."""
        key = self.keys.live(value) if value else None
        if key is None:
            raise SupabaseError(401, "Invalid API key")
        return key

    def rest_root(self, api_key: str) -> dict[str, Any]:
        """The REST API root (PostgREST): any live API key; the role follows its type."""
        role = "service_role" if self.api_key_of(api_key)["type"] == "secret" else "anon"
        return {"swagger": "2.0", "info": {"title": "PostgREST (twin)"}, "role": role}

    # -- the project ---------------------------------------------------------------------------------------
    def get_project(self) -> dict[str, Any]:
        """``V1ProjectWithDatabaseResponse``, from the project's facts and status."""
        p, ref = self.project, self.ref
        org = p.get("organization_slug", "spectral")
        return {
            "id": ref,
            "ref": ref,
            "organization_id": org,
            "organization_slug": org,
            "name": p.get("name", "spectral"),
            "region": p.get("region", "us-west-2"),
            "created_at": p.get("created_at", ""),
            "status": self.status,
            "database": {
                "host": p.get("db_host", "127.0.0.1"),
                "version": p.get("db_version", ""),
                "postgres_engine": "postgres",
                "release_channel": "ga",
            },
        }

    def services_health(self, services: list[str], timeout_ms: int) -> list[dict[str, Any]]:
        """Each named service's health (items may be comma-separated): the database ones are checked for real,
        the others follow the project."""
        names = [s for item in services for s in item.split(",") if s]
        unknown = [s for s in names if s not in SERVICES]
        if unknown:
            raise SupabaseError(400, f"unknown service(s) {', '.join(unknown)}; one of {', '.join(SERVICES)}")
        out: list[dict[str, Any]] = []
        for name in names:
            error = ""
            if self.status == RESTORING:
                status, error = "COMING_UP", "project is restoring"
            elif name in DB_SERVICES:
                ok, error = self.database.connected(timeout_ms)
                status = ACTIVE if ok else "UNHEALTHY"
            else:
                status = ACTIVE if self.status == ACTIVE else "UNHEALTHY"
            row: dict[str, Any] = {"name": name, "healthy": status == ACTIVE, "status": status}
            if name == "auth":
                row["info"] = {"name": "GoTrue", "version": "v2.170.0", "description": "GoTrue (twin)"}
            elif name == "rest":
                row["info"] = {"db_schema": "public"}
            if error:
                row["error"] = error
            out.append(row)
        return out

    # -- backups -------------------------------------------------------------------------------------------
    @property
    def pitr_enabled(self) -> bool:
        return "pitr-disabled" not in self.faults

    def list_backups(self) -> dict[str, Any]:
        return self.restores.backups(region=self.project.get("region", "us-west-2"), pitr_enabled=self.pitr_enabled)

    def restore_pitr(self, body: Any) -> str:
        return self.restores.start(body, pitr_enabled=self.pitr_enabled)

    def create_restore_point(self, body: Any) -> dict[str, Any]:
        return self.restores.create_point(body, project_status=self.status)

    # -- posture -------------------------------------------------------------------------------------------
    def addons(self) -> dict[str, Any]:
        """``ListProjectAddonsResponse``: the PITR add-on (none with ``pitr-disabled``)."""
        selected = [pitr_addon(self.posture.pitr_days)] if self.pitr_enabled else []
        variants = [pitr_addon(d)["variant"] for d in PITR_VARIANTS]
        available = [{"type": "pitr", "name": "Point in time recovery", "variants": variants}]
        return {"selected_addons": selected, "available_addons": available}

    def ssl_enforcement(self) -> dict[str, Any]:
        return {"currentConfig": {"database": self.posture.ssl}, "appliedSuccessfully": True}

    def network_restrictions(self) -> dict[str, Any]:
        cidrs = self.posture.cidrs
        return {
            "entitlement": "allowed",
            "config": {
                "dbAllowedCidrs": [c for c in cidrs if ":" not in c],
                "dbAllowedCidrsV6": [c for c in cidrs if ":" in c],
            },
            "status": "applied",
            "applied_at": now(),
        }

    def auth_config(self) -> dict[str, Any]:
        """``AuthConfigResponse``: the fields the twin has (``jwt_exp``)."""
        return {"jwt_exp": self.users.jwt_exp(3600)}

    # -- the project's auth --------------------------------------------------------------------------------
    def sign_in(self, grant_type: str, body: Any, issuer: str) -> dict[str, Any]:
        """``grant_type=password``: an access token for the user, signed by the key in use, valid ``jwt_exp``."""
        if grant_type != "password":
            raise SupabaseError(400, "the twin supports grant_type=password only")
        body = request_object(body)
        email = str(body.get("email", ""))
        user = self.users.check_password(email, str(body.get("password", "")))
        key = self.signing_keys.in_use()
        lifetime = self.users.jwt_exp()
        iat = int(time.time())
        claims = {
            "iss": issuer,
            "sub": user["id"],
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "iat": iat,
            "exp": iat + lifetime,
            "session_id": str(uuid.uuid4()),
        }
        return {
            "access_token": sign(key, claims),
            "token_type": "bearer",
            "expires_in": lifetime,
            "expires_at": iat + lifetime,
            "refresh_token": secrets.token_urlsafe(12),
            "user": {"id": user["id"], "aud": "authenticated", "role": "authenticated", "email": email},
        }

    def user_of(self, token: str) -> dict[str, Any]:
        """The user of an access token signed by a published key (401 for any other token)."""
        try:
            key = self.signing_keys.verifying(jwt.get_unverified_header(token).get("kid"))
            if key is None:
                raise jwt.InvalidTokenError("unknown or revoked signing key")
            claims = verify(key, token, "authenticated")
        except jwt.PyJWTError as e:
            raise SupabaseError(401, f"invalid JWT: {type(e).__name__}") from None
        return {"id": claims["sub"], "aud": claims["aud"], "role": claims["role"], "email": claims.get("email")}
