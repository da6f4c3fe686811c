"""Key issuers: one per provider kind of rotating key (the inventory's ``rotating_keys[].provider``).

An issuer knows one provider's credentials: it identifies the current one, issues a new one, finds one an
interrupted run issued, revokes the old one and proves it refused (:class:`Issuer`). Issuers are registered
by kind in :data:`ISSUERS` (the :func:`issuer` decorator); :func:`build_issuers` looks each selected key's
kind up there and builds its issuer with the class's ``for_key``, sharing provider clients across keys
through one :class:`IssuerContext`. A kind without an issuer is refused with :class:`UnknownIssuer`.

Adding a kind: a class here decorated with ``@issuer("<kind>")``, and the kind added to
``RotatingKey.provider`` in :mod:`runbooks.inventory.models` (docs/ARCHITECTURE.md, "Adding a key issuer").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from runbooks.inventory.models import Environment, RotatingKey
from runbooks.plan import utcnow
from runbooks.providers.base import ProviderError
from runbooks.providers.render import protect
from runbooks.secrets import fingerprint
from runbooks.state.rotation import KeyRotation, RotationFailed


@dataclass
class IssuerContext:
    """What issuers need to reach their providers, built once per run and shared across keys: a client given
    here is used as it is; a missing one is made from the environment's inventory on first use."""

    env: Environment
    supabase: Any = None
    cloudflare_admin: Any = None
    cloudflare_verify: Callable[[str], Any] | None = None
    resolve: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Issued:
    id: str | None
    name: str | None
    value: str = field(repr=False)


class Issuer(Protocol):
    #: can the old credential be revoked separately from issuing (False: the issue already revoked it)
    separate_revoke: bool

    @classmethod
    def for_key(cls, key: RotatingKey, ctx: IssuerContext) -> Issuer: ...

    def identify(self, current: str) -> tuple[bool, str | None, str]: ...
    def issue(self, rotation: KeyRotation) -> Issued: ...
    def find_issued(self, rotation: KeyRotation) -> Issued | None: ...
    def revoke(self, rotation: KeyRotation) -> str: ...
    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]: ...


class UnknownIssuer(ValueError):
    """A rotating key's provider kind has no registered issuer."""


#: issuer classes by provider kind (the inventory's ``rotating_keys[].provider``); filled by :func:`issuer`
ISSUERS: dict[str, type[Issuer]] = {}

_C = TypeVar("_C", bound=type[Any])


def issuer(kind: str) -> Callable[[_C], _C]:
    """Class decorator: register the class as the issuer of provider kind ``kind`` (once)."""

    def register(cls: _C) -> _C:
        if kind in ISSUERS:
            raise ValueError(f"an issuer of {kind!r} is already registered ({ISSUERS[kind].__name__})")
        ISSUERS[kind] = cls
        return cls

    return register


@issuer("supabase")
class SupabaseKeyIssuer:
    """A Supabase API key (secret or publishable): create a new one, delete the old one."""

    separate_revoke = True

    def __init__(self, keys: Any, kind: str):
        self.keys, self.kind = keys, kind

    @classmethod
    def for_key(cls, key: RotatingKey, ctx: IssuerContext) -> SupabaseKeyIssuer:
        if ctx.supabase is None:
            from runbooks.providers.supabase_keys import SupabaseKeys

            ctx.supabase = SupabaseKeys.from_environment(ctx.env)
        return cls(ctx.supabase, key.kind)

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        k = self.keys.find_api_key(current)
        if k is None:
            return False, None, "the group's value is not a live API key of the project"
        if k.type != self.kind:
            return False, None, f"the group's value is a {k.type} key, expected {self.kind}"
        return True, k.id, f"{k.type} key {k.name} ({k.id})"

    def issue(self, rotation: KeyRotation) -> Issued:
        name = rotation.new_name or f"rotated_{utcnow():%Y%m%d%H%M%S}"
        k = self.keys.create_api_key(self.kind, name, "issued by rotate-keys")
        return Issued(k.id, k.name, protect(k.value, f"new:{rotation.key}"))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        for k in self.keys.api_keys(reveal=True):
            if (rotation.new_id and k.id == rotation.new_id) or (not rotation.new_id and k.name == rotation.new_name):
                return Issued(k.id, k.name, k.value) if k.value else None
        return None

    def revoke(self, rotation: KeyRotation) -> str:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the old API key to revoke")
        if not any(k.id == rotation.old_id for k in self.keys.api_keys()):
            return f"API key {rotation.old_id} was already deleted"
        self.keys.delete_api_key(rotation.old_id)
        return f"deleted API key {rotation.old_id}"

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        exists = any(k.id == rotation.old_id for k in self.keys.api_keys())
        if exists:
            return False, f"API key {rotation.old_id} still exists"
        if old_value is None:
            return True, f"API key {rotation.old_id} no longer exists (old value not held by this run: resumed)"
        accepted, status = self.keys.project_accepts(old_value)
        return (not accepted), f"the project's API answers HTTP {status} to the old key ({rotation.old_fingerprint})"


@issuer("cloudflare")
class CloudflareTokenIssuer:
    """The runtime's Cloudflare API token, rotated with zero downtime: create a second token with the same
    policies (both valid during the overlap), move every service to it, then delete the old one.

    ``admin`` is the runbooks' own token (it holds the API Tokens permission); it is never rolled or deleted:
    a group that holds it is refused at preflight. A new token's value is shown once by Cloudflare; if a run
    stops before writing it to the group, the next run deletes that token (it was never distributed) and
    creates another, so at most one new token is live."""

    separate_revoke = True

    def __init__(self, admin: Any, verify: Callable[[str], Any]):
        self.admin, self.verify = admin, verify

    @classmethod
    def for_key(cls, key: RotatingKey, ctx: IssuerContext) -> CloudflareTokenIssuer:
        if ctx.cloudflare_admin is None or ctx.cloudflare_verify is None:
            from runbooks.providers.cloudflare import CloudflareProvider

            env = ctx.env
            admin = ctx.cloudflare_admin or CloudflareProvider.from_environment(env)

            def verify(value: str) -> Any:
                with CloudflareProvider(
                    env.endpoints.cloudflare_api, value, account_id=env.cloudflare_account_id, zone=env.zone
                ) as p:
                    return p.verify_token()

            ctx.cloudflare_admin, ctx.cloudflare_verify = admin, ctx.cloudflare_verify or verify
        return cls(ctx.cloudflare_admin, ctx.cloudflare_verify)

    @staticmethod
    def _name(base: str, rotation: KeyRotation) -> str:
        return f"{base.split(' (rotated_')[0]} ({rotation.new_name})"

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        try:
            info = self.verify(current)
        except ProviderError as e:
            return False, None, f"Cloudflare does not accept the group's token ({e.status or e})"
        if info.id == self.admin.verify_token().id:
            return (
                False,
                None,
                (
                    "the group holds the runbooks' own admin token: give the runtime its own token "
                    "(only the permissions it needs) and put that one in the group"
                ),
            )
        token = self.admin.get_token(info.id)
        if token is None:
            return False, None, f"token {info.id} is not visible to the runbooks' token (another user's token?)"
        return True, info.id, f"token {token.name} ({info.id}, {info.status})"

    def _orphans(self, rotation: KeyRotation) -> list[Any]:
        suffix = f" ({rotation.new_name})"
        return [t for t in self.admin.list_tokens() if t.name.endswith(suffix) and t.id != rotation.old_id]

    def issue(self, rotation: KeyRotation) -> Issued:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the current token")
        old = self.admin.get_token(rotation.old_id)
        if old is None:
            raise RotationFailed(
                f"{rotation.key}: the current token {rotation.old_id} no longer exists, so its "
                "policies are unknown; create the runtime token by hand and delete the state entry"
            )
        for orphan in self._orphans(rotation):  # created by an interrupted issue; its value was never recorded
            self.admin.delete_token(orphan.id)
        created = self.admin.create_token(self._name(old.name, rotation), old.policies)
        return Issued(created.info.id, created.info.name, protect(created.value, f"new:{rotation.key}"))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        return None  # Cloudflare shows a token's value once, at creation: it cannot be read back

    def discard(self, rotation: KeyRotation) -> str:
        """Delete the new token whose value was lost with an interrupted run (it never reached the group)."""
        gone = [t.id for t in self._orphans(rotation)]
        if rotation.new_id and rotation.new_id not in gone and self.admin.get_token(rotation.new_id) is not None:
            gone.append(rotation.new_id)
        for token_id in gone:
            self.admin.delete_token(token_id)
        return (
            f"deleted token(s) {', '.join(gone)}: issued by the interrupted run, value not recoverable, never "
            "distributed"
            if gone
            else "the token issued by the interrupted run no longer exists"
        )

    def revoke(self, rotation: KeyRotation) -> str:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the old token to delete")
        if rotation.old_id == self.admin.verify_token().id:
            raise RotationFailed(f"{rotation.key}: refusing to delete the runbooks' own admin token")
        if self.admin.get_token(rotation.old_id) is None:
            return f"API token {rotation.old_id} was already deleted"
        self.admin.delete_token(rotation.old_id)
        return f"deleted API token {rotation.old_id}"

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        if rotation.old_id and self.admin.get_token(rotation.old_id) is not None:
            return False, f"API token {rotation.old_id} still exists"
        if old_value is None:
            return True, f"API token {rotation.old_id} no longer exists (old value not held by this run: resumed)"
        try:
            self.verify(old_value)
        except ProviderError as e:
            return (e.status == 401), f"Cloudflare answers HTTP {e.status} to the previous token's verify"
        return False, "Cloudflare still accepts the previous token"


@issuer("oauth")
class OAuthSecretIssuer:
    """An OAuth client secret generated in the identity provider's console, read from ``source``. The old
    one is revoked by hand in that console (``manual_revoke``): the rotator waits for on-call's confirmation."""

    separate_revoke = True
    manual_revoke = True

    def __init__(self, source: str | None, resolve: Callable[[str], str]):
        self.source, self.resolve = source, resolve

    @classmethod
    def for_key(cls, key: RotatingKey, ctx: IssuerContext) -> OAuthSecretIssuer:
        if ctx.resolve is None:
            from runbooks.secrets import secret

            ctx.resolve = secret
        return cls(key.source, ctx.resolve)

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        if not self.source:
            return False, None, "the inventory gives no source reference for the next client secret"
        nxt = self.resolve(self.source)
        if nxt == current:
            return (
                False,
                None,
                (
                    f"{self.source} holds the value already in the group: generate the next client "
                    "secret in the identity provider and store it there first"
                ),
            )
        return True, None, f"next client secret ready in {self.source} ({fingerprint(nxt)})"

    def issue(self, rotation: KeyRotation) -> Issued:
        if not self.source:
            raise RotationFailed(f"{rotation.key}: the inventory gives no source reference for the next secret")
        return Issued(None, None, self.resolve(self.source))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        return self.issue(rotation) if self.source else None

    def revoke(self, rotation: KeyRotation) -> str:
        return (
            f"manual: delete the previous client secret in the identity provider's console ({rotation.old_fingerprint})"
        )

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        # the runbook has no API to the identity provider: it cannot prove the old secret refused
        return False, "not verifiable by the runbook: the identity provider has no API it can call"


# -- construction from the inventory ----------------------------------------------------------------
def build_issuers(
    env: Environment,
    keys: list[RotatingKey],
    *,
    supabase: Any = None,
    cloudflare_admin: Any = None,
    cloudflare_verify: Callable[[str], Any] | None = None,
    resolve: Callable[[str], str] | None = None,
) -> dict[str, Issuer]:
    """One issuer per key, by the key's provider kind (:data:`ISSUERS`); clients given are used as they are."""
    ctx = IssuerContext(env, supabase, cloudflare_admin, cloudflare_verify, resolve)
    out: dict[str, Issuer] = {}
    for k in keys:
        cls = ISSUERS.get(k.provider)
        if cls is None:
            raise UnknownIssuer(
                f"{k.name}: no key issuer for provider {k.provider!r} (registered: {', '.join(sorted(ISSUERS))}); "
                "register one with @issuer(...) in runbooks.procedures.rotation.issuers"
            )
        out[k.name] = cls.for_key(k, ctx)
    return out
