"""codex's JWKS gate on the twin: the JWKS URL learnt lazily from endpoints.json, signature by kid, expiry,
audience and issuer, unknown kids refused after one refresh, revoked keys refused once the cache expires."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from runbooks.sandbox.edge.jwks_gate import JwksGate


@dataclass
class Jwks:
    """A project auth server stand-in: publishes ``keys`` (kid -> private key) at the JWKS path."""

    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""

    def add(self, kid: str) -> Any:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[kid]

    def document(self) -> bytes:
        out = []
        for kid, priv in self.keys.items():
            jwk = json.loads(ECAlgorithm.to_jwk(priv.public_key()))
            out.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return json.dumps({"keys": out}).encode()

    def token(
        self, kid: str, *, key: Any = None, exp: float = 60, aud: str = "authenticated", iss: str | None = None
    ) -> str:
        now = int(time.time())
        claims = {"sub": "u1", "aud": aud, "iss": iss or self.url + "/auth/v1", "iat": now, "exp": now + exp}
        return jwt.encode(claims, key or self.keys[kid], algorithm="ES256", headers={"kid": kid})


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    state = Jwks()

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/auth/v1/.well-known/jwks.json"
            body = state.document() if ok else b"{}"
            state.fetches += ok
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    state.add("k1")
    yield state
    server.shutdown()


def publish(root: Path, url: str) -> None:
    (root / "endpoints.json").write_text(json.dumps({"inventory_overlay": {"endpoints": {"supabase_project": url}}}))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def gate(root: Path, clock: Clock | None = None) -> JwksGate:
    return JwksGate(root, ttl=2.0, min_refetch=0.5, clock=clock or Clock())


def test_a_token_signed_by_a_published_key_passes(tmp_path: Path, jwks: Jwks) -> None:
    publish(tmp_path, jwks.url)
    v = gate(tmp_path).check("Bearer " + jwks.token("k1"))
    assert v.ok and v.claims["sub"] == "u1" and v.reason == "signed by k1"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda j: None, "authentication required"),
        (lambda j: "Basic abc", "authentication required"),
        (lambda j: "Bearer not-a-jwt", "malformed token"),
        (lambda j: "Bearer " + j.token("k1", exp=-30), "token expired"),
        (lambda j: "Bearer " + j.token("k1", key=ec.generate_private_key(ec.SECP256R1())), "invalid signature"),
        (
            lambda j: "Bearer " + j.token("unpublished", key=ec.generate_private_key(ec.SECP256R1())),
            "unknown signing key unpublished",
        ),
        (lambda j: "Bearer " + j.token("k1", aud="anon"), "wrong audience"),
        (lambda j: "Bearer " + j.token("k1", iss="http://elsewhere/auth/v1"), "wrong issuer"),
        (
            lambda j: (
                "Bearer "
                + jwt.encode(
                    {"sub": "u1"}, "shared-secret-0123456789abcdef-0123", algorithm="HS256", headers={"kid": "k1"}
                )
            ),
            "algorithm 'HS256' does not match",
        ),
    ],
)
def test_refusals_say_why(tmp_path: Path, jwks: Jwks, make: Any, reason: str) -> None:
    publish(tmp_path, jwks.url)
    v = gate(tmp_path).check(make(jwks))
    assert not v.ok and reason in v.reason


def test_the_url_is_learnt_at_request_time(tmp_path: Path, jwks: Jwks) -> None:
    g = gate(tmp_path)
    token = "Bearer " + jwks.token("k1")
    v = g.check(token)  # the edge started first: supabase not published yet
    assert not v.ok and "JWKS unavailable" in v.reason and "not published yet" in v.reason
    publish(tmp_path, jwks.url)
    assert g.check(token).ok


def test_unreachable_jwks_fails_closed(tmp_path: Path, jwks: Jwks) -> None:
    publish(tmp_path, "http://127.0.0.1:9")
    v = gate(tmp_path).check("Bearer " + jwks.token("k1"))
    assert not v.ok and "JWKS unavailable" in v.reason


def test_cache_ttl_new_kid_refresh_and_revocation(tmp_path: Path, jwks: Jwks) -> None:
    publish(tmp_path, jwks.url)
    clock = Clock()
    g = gate(tmp_path, clock)
    old = "Bearer " + jwks.token("k1")
    assert g.check(old).ok and jwks.fetches == 1
    assert g.check(old).ok and jwks.fetches == 1  # cached
    # a key published after the cache was filled: one refresh (after min_refetch) finds it
    jwks.add("k2")
    clock.t += 0.6
    assert g.check("Bearer " + jwks.token("k2")).ok and jwks.fetches == 2
    # unknown kids do not hammer the JWKS: no second refresh within min_refetch
    stranger = "Bearer " + jwks.token("k9", key=ec.generate_private_key(ec.SECP256R1()))
    assert not g.check(stranger).ok and jwks.fetches == 2
    # k1 revoked: still cached until the TTL runs out, refused after the refresh
    del jwks.keys["k1"]
    assert g.check(old).ok
    clock.t += 2.0
    v = g.check(old)
    assert not v.ok and "unknown signing key k1" in v.reason and jwks.fetches == 3
