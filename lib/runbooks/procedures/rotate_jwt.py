"""Rotate the project's JWT signing key without logging anyone out.

1. ``standby``: create a standby key (or reuse the one that exists);
2. ``jwks_publishes``: the project's JWKS publishes it (verifiers cache JWKS: they must know the key
   before it signs anything);
3. ``rotate``: the standby key goes in use; the key in use becomes ``previously_used``;
4. ``verify``: a token signed before the rotation still validates through JWKS (the overlap), a new
   token is signed with the new key and validates through JWKS (PyJWKClient, and supabase-py's
   ``get_claims``), and codex (the JWKS-gated app) accepts it;
5. ``wait``: the access-token lifetime must pass after the rotation, so that no token signed with the
   previous key is still valid;
6. ``revoke`` the previous key, then ``verify_revoked``: JWKS no longer publishes it and a token it signed
   no longer validates.

:meth:`JwtRotator.plan` returns a :class:`JwtPlan` (a :class:`runbooks.plan.Plan`: a project without exactly one
key in use is refused by ``raise_if_unsafe``, nothing changed); :meth:`JwtRotator.apply` requires the
authorisation ``runbooks.guard_apply`` returned (:func:`runbooks.plan.require`).

Resumable from the provider's own state: a standby key means "rotate next", a ``previously_used`` key
means "wait, then revoke". A run that would wait longer than ``max_wait`` stops after the rotation and
says when to re-run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment
from runbooks.plan import Authorisation, Plan, Step, UnsafePlan, require
from runbooks.providers.supabase_keys import SigningKey, SupabaseKeys

#: algorithms of a new signing key (the Management API's ``CreateSigningKeyBody``, asymmetric ones only:
#: verifiers validate through the JWKS, never with a shared secret)
ALGORITHMS = ("ES256", "RS256")


class JwtRotationFailed(RuntimeError):
    """A verification failed; the message says what and which state the keys are in."""


class JwtRefused(UnsafePlan):
    """The project's signing keys are not in a state to rotate from; nothing was changed (exit 2)."""


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def kid_of(token: str) -> str | None:
    return jwt.get_unverified_header(token).get("kid")


class TokenValidator:
    """Validates access tokens the way the project's verifiers do: through the JWKS, never a shared secret."""

    def __init__(self, project_url: str, publishable_key: str | None = None):
        self.project_url = project_url.rstrip("/")
        self.publishable_key = publishable_key

    @property
    def jwks_url(self) -> str:
        return f"{self.project_url}/auth/v1/.well-known/jwks.json"

    def via_jwks(self, token: str) -> dict[str, Any]:
        """PyJWKClient against the JWKS (fresh fetch), signature + audience + expiry, like codex's Function."""
        client = jwt.PyJWKClient(self.jwks_url, cache_jwk_set=False, cache_keys=False)
        key = client.get_signing_key_from_jwt(token)
        return dict(jwt.decode(token, key.key, algorithms=[key.algorithm_name or "ES256"], audience="authenticated"))

    def via_supabase(self, token: str) -> dict[str, Any]:
        """supabase-py's claims path (``get_claims``: JWKS from the auth server, signature and expiry)."""
        from supabase_auth import SyncGoTrueClient

        headers = {"apikey": self.publishable_key} if self.publishable_key else {}
        client = SyncGoTrueClient(
            url=f"{self.project_url}/auth/v1", headers=headers, auto_refresh_token=False, persist_session=False
        )
        resp = client.get_claims(jwt=token)
        if resp is None:
            raise jwt.InvalidTokenError("supabase-py returned no claims")
        return dict(resp["claims"])

    def validates(self, token: str) -> tuple[bool, str]:
        """Both paths must accept the token: (ok, detail)."""
        problems = []
        for name, fn in (("JWKS", self.via_jwks), ("supabase-py", self.via_supabase)):
            try:
                fn(token)
            except Exception as e:  # any refusal is a verdict, reported by type (never the token)
                problems.append(f"{name}: {type(e).__name__}")
        return (not problems), ("validates through JWKS and supabase-py" if not problems else "; ".join(problems))


@dataclass
class JwtPlan(Plan):
    """Step statuses: done | already done | waiting | skipped | failed."""

    refusal = JwtRefused
    fix = "repair the project's signing keys in the Supabase dashboard, then re-run"

    environment: str
    in_use: SigningKey | None
    standby: SigningKey | None
    previous: list[SigningKey]
    lifetime: int
    phase: str  #: fresh | standby_ready | rotated
    revoke_at: float | None = None  #: epoch seconds, for a rotated phase
    notes: list[str] = field(default_factory=list)
    in_use_count: int = 1  #: signing keys in use (exactly one, or the plan is unsafe)

    def problems(self) -> list[str]:
        if self.in_use_count != 1:
            return [f"expected exactly one signing key in use, found {self.in_use_count}"]
        return []

    def rows(self) -> list[dict[str, str]]:
        out = [
            {"key": k.id, "status": k.status, "algorithm": k.algorithm, "updated": k.updated_at}
            for k in [
                *([self.in_use] if self.in_use else []),
                *([self.standby] if self.standby else []),
                *self.previous,
            ]
        ]
        return out

    def steps(self) -> list[dict[str, str]]:
        todo = {
            "fresh": ["standby", "jwks_publishes", "rotate", "verify", "wait", "revoke", "verify_revoked"],
            "standby_ready": ["jwks_publishes", "rotate", "verify", "wait", "revoke", "verify_revoked"],
            "rotated": ["wait", "revoke", "verify_revoked"],
        }[self.phase]
        return [{"step": s, "plan": PLAN_TEXT[s].format(lifetime=self.lifetime)} for s in todo]


PLAN_TEXT = {
    "standby": "create a standby signing key",
    "jwks_publishes": "wait until the project's JWKS publishes the standby key",
    "rotate": "put the standby key in use (the current key becomes previously_used)",
    "verify": "old token still validates (overlap); new token signed by the new key validates; codex accepts it",
    "wait": "wait until {lifetime}s (the access-token lifetime) have passed since the rotation",
    "revoke": "revoke the previously used key",
    "verify_revoked": "JWKS no longer publishes it; a token it signed no longer validates",
}


class JwtRotator:
    def __init__(
        self,
        keys: SupabaseKeys,
        validator: TokenValidator,
        token_source: Callable[[], str],
        *,
        environment: str,
        lifetime: int,
        codex: Callable[[str], tuple[bool, str]] | None = None,
        algorithm: str = "ES256",
        max_wait: float = 900.0,
        jwks_timeout: float = 30.0,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        self.keys, self.validator, self.token_source = keys, validator, token_source
        self.environment = environment
        self.lifetime, self.codex, self.algorithm = lifetime, codex, algorithm
        self.max_wait, self.jwks_timeout, self.log, self.sleep, self.clock = max_wait, jwks_timeout, log, sleep, clock

    def plan(self) -> JwtPlan:
        all_keys = self.keys.signing_keys()
        in_use = [k for k in all_keys if k.status == "in_use"]
        standby = [k for k in all_keys if k.status == "standby"]
        previous = [k for k in all_keys if k.status == "previously_used"]
        phase = "rotated" if previous else ("standby_ready" if standby else "fresh")
        plan = JwtPlan(
            self.environment,
            in_use[0] if len(in_use) == 1 else None,
            standby[0] if standby else None,
            previous,
            self.lifetime,
            phase,
            in_use_count=len(in_use),
        )
        if previous:
            plan.revoke_at = max(_ts(k.updated_at) for k in previous) + self.lifetime
            plan.notes.append("a previous rotation is not finished: this run waits and revokes the previous key")
            if standby:
                plan.notes.append(f"standby key {standby[0].id} is left for the next rotation")
        return plan

    def _jwks_kids(self) -> list[str]:
        return [str(k.get("kid")) for k in self.keys.jwks().get("keys", [])]

    def apply(
        self, plan: JwtPlan, authorisation: Authorisation, *, on_row: Callable[[Step], None] | None = None
    ) -> list[Step]:
        """Run the plan's steps (``authorisation``: what ``runbooks.guard_apply`` returned)."""
        require(plan, authorisation)
        rows: list[Step] = []

        def emit(step: str, status: str, detail: str) -> None:
            row = Step(step, status, detail)
            rows.append(row)
            self.log(f"{step}: {status}: {detail}")
            if on_row:
                on_row(row)

        old_token: str | None = None
        if plan.phase in ("fresh", "standby_ready"):
            old_token = self._rotate(plan, emit)
        if plan.phase == "rotated" and plan.revoke_at is not None:
            revoke_at = plan.revoke_at
        else:
            revoke_at = self._rotated_at(plan) + self.lifetime
        remaining = revoke_at - self.clock()
        if remaining > self.max_wait:
            emit(
                "wait",
                "waiting",
                f"{remaining:.0f}s of the {self.lifetime}s token lifetime remain; re-run after "
                f"{datetime.fromtimestamp(revoke_at, UTC):%Y-%m-%dT%H:%M:%SZ} to revoke the previous key",
            )
            return rows
        if remaining > 0:
            self.sleep(remaining + 0.5)
        emit("wait", "done", f"the {self.lifetime}s access-token lifetime has passed since the rotation")
        self._revoke(emit, old_token)
        return rows

    def _rotated_at(self, plan: JwtPlan) -> float:
        previous = [k for k in self.keys.signing_keys() if k.status == "previously_used"]
        return max(_ts(k.updated_at) for k in previous) if previous else self.clock()

    def _rotate(self, plan: JwtPlan, emit: Callable[[str, str, str], None]) -> str:
        assert plan.in_use is not None
        standby = plan.standby
        if standby is None:
            standby = self.keys.create_signing_key(self.algorithm, "standby")
            emit("standby", "done", f"created {standby.algorithm} key {standby.id}")
        else:
            emit("standby", "already done", f"standby key {standby.id} exists")
        deadline = self.clock() + self.jwks_timeout
        while standby.id not in self._jwks_kids():
            if self.clock() > deadline:
                raise JwtRotationFailed(
                    f"JWKS does not publish standby key {standby.id} after {self.jwks_timeout}s; nothing was rotated"
                )
            self.sleep(1.0)
        emit("jwks_publishes", "done", f"JWKS publishes {standby.id}")
        old_token = self.token_source()
        if kid_of(old_token) != plan.in_use.id:
            raise JwtRotationFailed(f"tokens are signed by {kid_of(old_token)}, not by the key in use {plan.in_use.id}")
        self.keys.set_signing_key_status(standby.id, "in_use")
        emit("rotate", "done", f"{standby.id} in use; {plan.in_use.id} previously used")
        ok, detail = self.validator.validates(old_token)
        emit("verify_overlap", "done" if ok else "failed", f"token signed by the previous key: {detail}")
        new_token = self.token_source()
        signed_by_new = kid_of(new_token) == standby.id
        ok_new, detail_new = self.validator.validates(new_token)
        emit(
            "verify_new",
            "done" if signed_by_new and ok_new else "failed",
            f"new token signed by {kid_of(new_token)}: {detail_new}",
        )
        if self.codex is not None:
            accepted, codex_detail = self.codex(new_token)
            emit("verify_codex", "done" if accepted else "failed", codex_detail)
        else:
            accepted = True
            emit(
                "verify_codex",
                "skipped",
                "codex is not reachable from here (no JWKS-gated hostname, or the twin's edge is not running)",
            )
        if not (ok and signed_by_new and ok_new and accepted):
            raise JwtRotationFailed(
                "verification after the rotation failed (see the steps); the previous key is still"
                " published, so existing sessions keep working: investigate before revoking"
            )
        return old_token

    def _revoke(self, emit: Callable[[str, str, str], None], old_token: str | None) -> None:
        previous = [k for k in self.keys.signing_keys() if k.status == "previously_used"]
        for k in previous:
            self.keys.set_signing_key_status(k.id, "revoked")
            emit("revoke", "done", f"revoked {k.id}")
        if not previous:
            emit("revoke", "already done", "no previously used key")
        published = self._jwks_kids()
        still = [k.id for k in previous if k.id in published]
        if still:
            emit("verify_revoked", "failed", f"JWKS still publishes {', '.join(still)}")
            raise JwtRotationFailed(f"revoked keys still published: {', '.join(still)}")
        detail = "JWKS no longer publishes the previous key"
        if old_token is not None:
            ok, why = self.validator.validates(old_token)
            if ok:
                emit("verify_revoked", "failed", "a token signed by the revoked key still validates")
                raise JwtRotationFailed("a token signed by the revoked key still validates")
            detail += f"; a token it signed is refused ({why})"
        emit("verify_revoked", "done", detail)


def forged_like(token: str) -> str:
    """The same header (kid) and claims as ``token``, signed by a throwaway key the JWKS does not publish."""
    from cryptography.hazmat.primitives.asymmetric import ec

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": header.get("kid")}
    )


def codex_checker(env: Environment) -> Callable[[str], tuple[bool, str]] | None:
    """codex's acceptance of a token: its HTTPS endpoint answers 2xx with the token, and 401 without one and
    with a forged one (same kid and claims, signed by another key): proof that it validates signatures
    through the JWKS rather than accepting any bearer token."""
    host = next((h.name for h in env.hostnames if h.pages_function), None)
    if host is None or (env.endpoints_from_sandbox and host not in env.endpoints.https_overrides):
        return None  # the twin's edge is not running: codex cannot be reached
    from runbooks.providers.tls import TlsClient

    tls = TlsClient.from_environment(env)

    def check(token: str) -> tuple[bool, str]:
        with_token = tls.request(host, "GET", "/", headers={"Authorization": f"Bearer {token}"})
        without = tls.request(host, "GET", "/")
        forged = tls.request(host, "GET", "/", headers={"Authorization": f"Bearer {forged_like(token)}"})
        ok = with_token.status_code < 300 and without.status_code == 401 and forged.status_code == 401
        return ok, (
            f"{host}: HTTP {with_token.status_code} with the new token, HTTP {without.status_code} without, "
            f"HTTP {forged.status_code} with a forged signature"
        )

    return check


def check_parameters(
    *,
    algorithm: str,
    probe_email: str,
    probe_password_ref: str,
    lifetime: int | None,
    max_wait: float,
) -> None:
    """Refuse unusable parameters (:class:`BadParameter`) before anything is read or changed."""
    from runbooks.secrets import SecretError, parse_ref

    if algorithm not in ALGORITHMS:
        raise BadParameter("algorithm", algorithm, "not an asymmetric signing algorithm", "use ES256 or RS256")
    local, _, domain = probe_email.strip().partition("@")
    if not local or "." not in domain:
        raise BadParameter(
            "probe_email", probe_email, "not an email address", "give the probe user's address, e.g. probe@example.com"
        )
    try:
        parse_ref(probe_password_ref)
    except SecretError:
        raise BadParameter(
            "probe_password_ref",
            probe_password_ref,
            "not a secret reference",
            "give a reference to the probe user's password: env:NAME, file:PATH or sandbox:NAME",
        ) from None
    if lifetime is not None and lifetime < 0:
        raise BadParameter(
            "token_lifetime_seconds",
            lifetime,
            "a negative lifetime",
            "give the access-token lifetime in seconds, or 0 for the inventory's",
        )
    if max_wait < 0:
        raise BadParameter(
            "max_wait_seconds", max_wait, "a negative wait", "give 0 or more seconds (0: stop after the rotation)"
        )


def build(
    env: Environment,
    *,
    probe_email: str,
    probe_password_ref: str,
    lifetime: int | None = None,
    algorithm: str = "ES256",
    max_wait: float = 900.0,
) -> JwtRotator:
    """A rotator for ``env``: Management API, the project's validators, a probe user's tokens, codex.
    Unusable parameters are refused first (:func:`check_parameters`)."""
    from runbooks.secrets import secret

    check_parameters(
        algorithm=algorithm,
        probe_email=probe_email,
        probe_password_ref=probe_password_ref,
        lifetime=lifetime,
        max_wait=max_wait,
    )

    keys = SupabaseKeys.from_environment(env)
    publishable = next((k.value for k in keys.api_keys(reveal=True) if k.type == "publishable" and k.value), None)
    if publishable is None:
        raise JwtRotationFailed("the project has no publishable API key to sign in the probe user with")
    password = secret(probe_password_ref)

    def token_source() -> str:
        return keys.password_token(probe_email, password, publishable)

    return JwtRotator(
        keys,
        TokenValidator(env.endpoints.supabase_project, publishable),
        token_source,
        environment=env.environment,
        lifetime=lifetime or env.access_token_lifetime_seconds,
        codex=codex_checker(env),
        algorithm=algorithm,
        max_wait=max_wait,
    )
