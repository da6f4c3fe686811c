"""JWT signing keys of the Supabase twin, without state: make a key pair, sign and verify access tokens.

A key is kept as a dict shaped like the Management API's ``SigningKeyResponse`` plus ``_private_jwk``
(never answered). ES256 and RS256 keys can be made; a key without a private part (the legacy HS256
secret of fault ``signing-key-legacy``) cannot sign.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from runbooks.sandbox.emulators.supabase.errors import SupabaseError

ALGORITHMS: dict[str, type[ECAlgorithm] | type[RSAAlgorithm]] = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm}


def key_pair(algorithm: str, kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(private JWK, public JWK) for a new key."""
    if algorithm == "ES256":
        priv: Any = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise SupabaseError(400, f"algorithm {algorithm} is not supported by the twin (use ES256 or RS256)")
    codec = ALGORITHMS[algorithm]
    private_jwk, public_jwk = json.loads(codec.to_jwk(priv)), json.loads(codec.to_jwk(priv.public_key()))
    common = {"kid": kid, "alg": algorithm, "use": "sig", "key_ops": ["verify"], "ext": True}
    public_jwk.update(common)
    private_jwk.update({**common, "key_ops": ["sign", "verify"]})
    return private_jwk, public_jwk


def new_signing_key(algorithm: str, status: str, at: str) -> dict[str, Any]:
    kid = str(uuid.uuid4())
    private_jwk, public_jwk = key_pair(algorithm, kid)
    return {
        "id": kid,
        "algorithm": algorithm,
        "status": status,
        "public_jwk": public_jwk,
        "created_at": at,
        "updated_at": at,
        "_private_jwk": private_jwk,
    }


def public_view(key: dict[str, Any]) -> dict[str, Any]:
    """The key as the API answers it (without ``_private_jwk``)."""
    return {k: v for k, v in key.items() if not k.startswith("_")}


def sign(key: dict[str, Any], claims: dict[str, Any]) -> str:
    """An access token with ``claims``, signed by ``key`` (``kid`` in its header)."""
    codec = ALGORITHMS.get(key["algorithm"])
    signer = codec.from_jwk(json.dumps(key["_private_jwk"])) if codec and "_private_jwk" in key else None
    if not isinstance(signer, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SupabaseError(500, f"signing key {key['id']} has no private part")
    return jwt.encode(claims, signer, algorithm=key["algorithm"], headers={"kid": key["id"]})


def verify(key: dict[str, Any], token: str, audience: str) -> dict[str, Any]:
    """The claims of ``token`` once its signature by ``key`` is checked (raises ``jwt.PyJWTError``)."""
    codec = ALGORITHMS.get(key["algorithm"])
    verifier = codec.from_jwk(json.dumps(key["public_jwk"])) if codec and key.get("public_jwk") else None
    if not isinstance(verifier, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise jwt.InvalidKeyError(f"signing key {key['id']} publishes no public key")
    return dict(jwt.decode(token, verifier, algorithms=[key["algorithm"]], audience=audience))
