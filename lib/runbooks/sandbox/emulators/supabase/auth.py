"""Supabase twin: JWT signing keys (Management API), the project's JWKS and its token endpoint.

Management API (shapes of ``SigningKeyResponse`` / ``SigningKeysResponse``):

- ``POST /v1/projects/{ref}/config/auth/signing-keys`` creates a key (``standby`` by default);
- ``PATCH .../signing-keys/{id}`` with ``{"status": ...}``: ``standby -> in_use`` rotates (the key in
  use becomes ``previously_used``), ``previously_used -> revoked`` or ``-> in_use`` (roll back);
- ``DELETE .../signing-keys/{id}`` removes a ``standby`` or ``revoked`` key.

Project auth: ``GET /auth/v1/.well-known/jwks.json`` publishes the public keys of every key that is
``in_use``, ``previously_used`` or ``standby``; ``POST /auth/v1/token?grant_type=password`` signs an
access token with the key in use (lifetime ``jwt_exp`` seconds, 5 in the twin); ``GET /auth/v1/user``
returns the token's user. The twin creates an in-use ES256 key and a probe user on start-up; the probe
user's password is the sandbox secret ``supabase_probe_password``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, Body, HTTPException, Request
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from runbooks.sandbox.emulators.common import write_secret
from runbooks.sandbox.emulators.supabase.keys import ctx_of, live_key, now, require_management

SECTION = "signing_keys"
USERS = "auth_users"
CONFIG = "auth_config"
PROBE_EMAIL = "runbook-probe@runspectral.com"
PROBE_PASSWORD_SECRET = "supabase_probe_password"
DEFAULT_JWT_EXP = 5
PUBLISHED = ("in_use", "previously_used", "standby")
#: allowed status changes through PATCH (from -> {to})
TRANSITIONS = {
    "standby": {"in_use"},
    "previously_used": {"revoked", "in_use", "standby"},
    "in_use": set(),
    "revoked": set(),
}

router = APIRouter()


def _generate(algorithm: str, kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(private JWK, public JWK) for a new key."""
    if algorithm == "ES256":
        priv: Any = ec.generate_private_key(ec.SECP256R1())
        private_jwk = json.loads(ECAlgorithm.to_jwk(priv))
        public_jwk = json.loads(ECAlgorithm.to_jwk(priv.public_key()))
    elif algorithm == "RS256":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_jwk = json.loads(RSAAlgorithm.to_jwk(priv))
        public_jwk = json.loads(RSAAlgorithm.to_jwk(priv.public_key()))
    else:
        raise HTTPException(400, f"algorithm {algorithm} is not supported by the twin (use ES256 or RS256)")
    common = {"kid": kid, "alg": algorithm, "use": "sig", "key_ops": ["verify"], "ext": True}
    public_jwk.update(common)
    private_jwk.update({**common, "key_ops": ["sign", "verify"]})
    return private_jwk, public_jwk


def new_signing_key(algorithm: str, status: str) -> dict[str, Any]:
    kid = str(uuid.uuid4())
    private_jwk, public_jwk = _generate(algorithm, kid)
    t = now()
    return {
        "id": kid,
        "algorithm": algorithm,
        "status": status,
        "public_jwk": public_jwk,
        "created_at": t,
        "updated_at": t,
        "_private_jwk": private_jwk,
    }


def response(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if not k.startswith("_")}


def _password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()


def on_startup(ctx: Any) -> None:
    with ctx.state.update() as data:
        keys = data.setdefault(SECTION, {})
        if not keys:
            key = new_signing_key("ES256", "in_use")
            keys[key["id"]] = key
        data.setdefault(CONFIG, {"jwt_exp": DEFAULT_JWT_EXP})
        users = data.setdefault(USERS, {})
        if PROBE_EMAIL not in users:
            password, salt = secrets.token_urlsafe(18), secrets.token_hex(8)
            users[PROBE_EMAIL] = {"id": str(uuid.uuid4()), "salt": salt, "hash": _password_hash(password, salt)}
            write_secret(ctx.args.root, PROBE_PASSWORD_SECRET, password)


def _get(ctx: Any, key_id: str) -> dict[str, Any]:
    key = ctx.state.section(SECTION).get(key_id)
    if key is None:
        raise HTTPException(404, f"signing key {key_id} not found")
    return key


def _sorted(ctx: Any) -> list[dict[str, Any]]:
    return sorted(ctx.state.section(SECTION).values(), key=lambda k: k["created_at"])


@router.get("/v1/projects/{ref}/config/auth/signing-keys")
def list_signing_keys(ref: str, request: Request) -> dict[str, Any]:
    ctx = require_management(request, ref)
    return {"keys": [response(k) for k in _sorted(ctx)]}


@router.post("/v1/projects/{ref}/config/auth/signing-keys", status_code=201)
def create_signing_key(ref: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    ctx = require_management(request, ref)
    unknown = set(body) - {"algorithm", "status", "private_jwk"}
    if unknown:
        raise HTTPException(400, f"unknown fields {sorted(unknown)}")
    if "private_jwk" in body:
        raise HTTPException(400, "importing a private JWK is not supported by the twin")
    status = body.get("status", "standby")
    if status not in ("standby", "in_use"):
        raise HTTPException(400, "status must be standby or in_use")
    key = new_signing_key(str(body.get("algorithm", "")), status)
    with ctx.state.update() as data:
        section = data.setdefault(SECTION, {})
        if status == "in_use":
            for other in section.values():
                if other["status"] == "in_use":
                    other["status"], other["updated_at"] = "previously_used", now()
        section[key["id"]] = key
    return response(key)


@router.get("/v1/projects/{ref}/config/auth/signing-keys/{key_id}")
def get_signing_key(ref: str, key_id: str, request: Request) -> dict[str, Any]:
    ctx = require_management(request, ref)
    return response(_get(ctx, key_id))


@router.patch("/v1/projects/{ref}/config/auth/signing-keys/{key_id}")
def update_signing_key(ref: str, key_id: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    ctx = require_management(request, ref)
    if set(body) != {"status"}:
        raise HTTPException(400, 'the body must be exactly {"status": ...}')
    target = body["status"]
    current = _get(ctx, key_id)["status"]
    if target == current:
        return response(_get(ctx, key_id))
    if target not in TRANSITIONS.get(current, set()):
        raise HTTPException(400, f"a {current} key cannot become {target}")
    with ctx.state.update() as data:
        section = data[SECTION]
        if target == "in_use":
            for other in section.values():
                if other["status"] == "in_use":
                    other["status"], other["updated_at"] = "previously_used", now()
        key = section[key_id]
        key["status"], key["updated_at"] = target, now()
        return response(key)


@router.delete("/v1/projects/{ref}/config/auth/signing-keys/{key_id}")
def remove_signing_key(ref: str, key_id: str, request: Request) -> dict[str, Any]:
    ctx = require_management(request, ref)
    key = _get(ctx, key_id)
    if key["status"] not in ("standby", "revoked"):
        raise HTTPException(400, f"a {key['status']} key cannot be removed; revoke it first")
    with ctx.state.update() as data:
        removed = data[SECTION].pop(key_id)
    return response(removed)


# -- the project's auth ---------------------------------------------------------------------------
@router.get("/auth/v1/.well-known/jwks.json")
def jwks(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    return {"keys": [k["public_jwk"] for k in _sorted(ctx) if k["status"] in PUBLISHED]}


def _issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/auth/v1"


def _require_apikey(request: Request) -> None:
    value = request.headers.get("apikey", "")
    if not value or live_key(ctx_of(request), value) is None:
        raise HTTPException(401, "Invalid API key")


@router.post("/auth/v1/token")
def token(request: Request, grant_type: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    _require_apikey(request)
    ctx = ctx_of(request)
    if grant_type != "password":
        raise HTTPException(400, "the twin supports grant_type=password only")
    user = ctx.state.section(USERS).get(str(body.get("email", "")))
    password = str(body.get("password", ""))
    if user is None or not hmac.compare_digest(user["hash"], _password_hash(password, user["salt"])):
        raise HTTPException(400, "Invalid login credentials")
    in_use = next((k for k in ctx.state.section(SECTION).values() if k["status"] == "in_use"), None)
    if in_use is None:
        raise HTTPException(500, "no signing key in use")
    lifetime = int(ctx.state.section(CONFIG).get("jwt_exp", DEFAULT_JWT_EXP))
    iat = int(time.time())
    claims = {
        "iss": _issuer(request),
        "sub": user["id"],
        "aud": "authenticated",
        "role": "authenticated",
        "email": body["email"],
        "iat": iat,
        "exp": iat + lifetime,
        "session_id": str(uuid.uuid4()),
    }
    algorithm = in_use["algorithm"]
    signer = (ECAlgorithm if algorithm == "ES256" else RSAAlgorithm).from_jwk(json.dumps(in_use["_private_jwk"]))
    if not isinstance(signer, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise HTTPException(500, f"signing key {in_use['id']} has no private part")
    access = jwt.encode(claims, signer, algorithm=algorithm, headers={"kid": in_use["id"]})
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": lifetime,
        "expires_at": iat + lifetime,
        "refresh_token": secrets.token_urlsafe(12),
        "user": {"id": user["id"], "aud": "authenticated", "role": "authenticated", "email": body["email"]},
    }


@router.get("/auth/v1/user")
def get_user(request: Request) -> dict[str, Any]:
    _require_apikey(request)
    ctx = ctx_of(request)
    raw = request.headers.get("authorization", "")[7:].strip()
    try:
        kid = jwt.get_unverified_header(raw).get("kid")
        key = ctx.state.section(SECTION).get(kid)
        if key is None or key["status"] not in PUBLISHED:
            raise jwt.InvalidTokenError("unknown or revoked signing key")
        alg = key["algorithm"]
        verifier = (ECAlgorithm if alg == "ES256" else RSAAlgorithm).from_jwk(json.dumps(key["public_jwk"]))
        if not isinstance(verifier, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise jwt.InvalidKeyError(f"signing key {kid} publishes no public key")
        claims = jwt.decode(raw, verifier, algorithms=[alg], audience="authenticated")
    except jwt.PyJWTError as e:
        raise HTTPException(401, f"invalid JWT: {type(e).__name__}") from None
    return {"id": claims["sub"], "aud": claims["aud"], "role": claims["role"], "email": claims.get("email")}
