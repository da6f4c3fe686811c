"""codex's Pages Function on the twin: every request needs a bearer JWT signed by a key of the project's JWKS.

The JWKS is the Supabase twin's ``<project URL>/auth/v1/.well-known/jwks.json``. The edge may start before
the Supabase twin (and the twin may move to another port on restart), so the project URL is learnt at request
time from the sandbox root's ``endpoints.json`` (``inventory_overlay.endpoints.supabase_project``, written by
the lifecycle), never at start-up.

Validation, as a verifier of Supabase access tokens does it: the token's header names a key id (``kid``)
published in the JWKS, with the JWK's algorithm (ES256 or RS256, never ``none`` or HMAC); the signature
verifies; ``exp`` has not passed; ``aud`` is ``authenticated``; ``iss`` is the project's auth URL. The JWKS is
cached for ``ttl`` seconds; a token naming a kid the cache does not know triggers one refresh (at most every
``min_refetch`` seconds), so a key published a moment ago is accepted and a key revoked is refused once the
cache has been refreshed. Anything else answers 401 with the reason (never the token).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

ENDPOINTS_FILE = "endpoints.json"
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
AUDIENCE = "authenticated"
ALGORITHMS = ("ES256", "RS256")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


class JwksGate:
    def __init__(
        self,
        root: Path,
        *,
        ttl: float = 2.0,
        min_refetch: float = 0.5,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.root, self.ttl, self.min_refetch, self.timeout, self.clock = root, ttl, min_refetch, timeout, clock
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._url: str | None = None
        self._fetched_at: float | None = None

    def project_url(self) -> str | None:
        """The Supabase project's URL as the lifecycle published it, or None (the Supabase twin is not up)."""
        try:
            raw = json.loads((self.root / ENDPOINTS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        url = raw.get("inventory_overlay", {}).get("endpoints", {}).get("supabase_project")
        return str(url).rstrip("/") if url and str(url).startswith("http") else None

    def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        r = httpx.get(url + JWKS_PATH, timeout=self.timeout)
        r.raise_for_status()
        return {str(k["kid"]): dict(k) for k in r.json().get("keys", []) if isinstance(k, dict) and k.get("kid")}

    def keys(self, *, refresh: bool = False) -> tuple[str, dict[str, dict[str, Any]]]:
        """(project URL, kid -> public JWK), from the cache unless it is older than ``ttl`` or ``refresh``."""
        url = self.project_url()
        if url is None:
            raise LookupError("the Supabase project's URL is not published yet (is the supabase twin up?)")
        with self._lock:
            age = None if self._fetched_at is None else self.clock() - self._fetched_at
            stale = age is None or url != self._url or age >= self.ttl or (refresh and age >= self.min_refetch)
            if stale:
                self._keys, self._url, self._fetched_at = self._fetch(url), url, self.clock()
            return url, dict(self._keys)

    def check(self, authorization: str | None) -> Verdict:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Verdict(False, "authentication required (a bearer token verified against the project's JWKS)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Verdict(False, "malformed token: not a JWT")
        kid = header.get("kid")
        if not kid:
            return Verdict(False, "the token names no signing key (kid)")
        try:
            url, keys = self.keys()
            if kid not in keys:
                url, keys = self.keys(refresh=True)
        except (LookupError, httpx.HTTPError, ValueError) as e:
            return Verdict(False, f"cannot validate the token: JWKS unavailable ({type(e).__name__}: {e})")
        jwk = keys.get(kid)
        if jwk is None:
            return Verdict(False, f"unknown signing key {kid}: not in the project's JWKS (revoked or never published)")
        alg = jwk.get("alg")
        if alg not in ALGORITHMS or header.get("alg") != alg:
            return Verdict(False, f"algorithm {header.get('alg')!r} does not match signing key {kid} ({alg})")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=url + "/auth/v1",
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            return Verdict(False, "token expired")
        except jwt.InvalidSignatureError:
            return Verdict(False, f"invalid signature for signing key {kid}")
        except jwt.InvalidAudienceError:
            return Verdict(False, f"wrong audience (expected {AUDIENCE})")
        except jwt.InvalidIssuerError:
            return Verdict(False, "wrong issuer (not this project's auth)")
        except jwt.PyJWTError as e:
            return Verdict(False, f"invalid token ({type(e).__name__})")
        return Verdict(True, f"signed by {kid}", dict(claims))
