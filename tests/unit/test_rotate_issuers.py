"""The rotation issuers' pass and fail paths, with fake vendor clients (no twin needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runbooks.procedures.rotation import (
    CloudflareTokenIssuer,
    KeyRotation,
    OAuthSecretIssuer,
    RotationFailed,
    SupabaseKeyIssuer,
)
from runbooks.providers.base import ProviderError


@dataclass
class Tok:
    id: str
    name: str = ""
    status: str = "active"
    policies: tuple[dict[str, Any], ...] = ()


@dataclass
class Created:
    info: Tok
    value: str


POLICY = {"effect": "allow", "permission_groups": [{"id": "dns-read"}], "resources": {"zone.z1": "*"}}


class FakeCloudflare:
    """Cloudflare's token API as the rotation uses it: the admin token and the runtime's token."""

    def __init__(self) -> None:
        self.tokens = {
            "tok-admin": Tok("tok-admin", "spectral-runbooks"),
            "tok-1": Tok("tok-1", "spectral-runtime", policies=(POLICY,)),
        }
        self.values = {"tok-admin": "cf_admin_value_0123456789", "tok-1": "cf_old_value_0123456789"}
        self.created = 0

    def verify(self, value: str) -> Tok:
        for tid, v in self.values.items():
            if v == value and tid in self.tokens:
                return self.tokens[tid]
        raise ProviderError("cloudflare", "verify token", "Invalid API Token", status=401)

    def verify_token(self) -> Tok:
        return self.tokens["tok-admin"]

    def get_token(self, token_id: str) -> Tok | None:
        return self.tokens.get(token_id)

    def list_tokens(self) -> list[Tok]:
        return list(self.tokens.values())

    def create_token(self, name: str, policies: Any) -> Created:
        self.created += 1
        tid = f"tok-new-{self.created}"
        self.tokens[tid] = Tok(tid, name, policies=tuple(policies))
        self.values[tid] = f"cf_new_value_{self.created}_0123456789"
        return Created(self.tokens[tid], self.values[tid])

    def delete_token(self, token_id: str) -> None:
        del self.tokens[token_id]


def test_cloudflare_creates_a_second_token_then_deletes_the_old_one() -> None:
    cf = FakeCloudflare()
    issuer = CloudflareTokenIssuer(cf, cf.verify)
    ok, old_id, detail = issuer.identify("cf_old_value_0123456789")
    assert (ok, old_id) == (True, "tok-1") and "spectral-runtime" in detail
    r = KeyRotation("CLOUDFLARE_API_TOKEN", "cloudflare", old_id="tok-1", new_name="rotated_1")
    issued = issuer.issue(r)
    assert issued.id == "tok-new-1" and issued.value == cf.values["tok-new-1"]
    assert cf.tokens["tok-new-1"].name == "spectral-runtime (rotated_1)"
    assert cf.tokens["tok-new-1"].policies == (POLICY,)  # the same policies as the current token
    # overlap: both tokens valid until revoke
    assert cf.verify("cf_old_value_0123456789").id == "tok-1" and cf.verify(issued.value).id == "tok-new-1"
    assert issuer.refused(r, "cf_old_value_0123456789") == (False, "API token tok-1 still exists")
    assert issuer.revoke(r) == "deleted API token tok-1"
    assert issuer.revoke(r) == "API token tok-1 was already deleted"
    assert issuer.refused(r, "cf_old_value_0123456789") == (
        True,
        "Cloudflare answers HTTP 401 to the previous token's verify",
    )
    assert issuer.refused(r, None)[0] is True  # resumed: the old value is not held, the token is gone
    assert "tok-admin" in cf.tokens and issuer.find_issued(r) is None and issuer.separate_revoke


def test_cloudflare_admin_token_in_the_group_is_refused_and_never_deleted() -> None:
    cf = FakeCloudflare()
    issuer = CloudflareTokenIssuer(cf, cf.verify)
    ok, old_id, detail = issuer.identify("cf_admin_value_0123456789")
    assert (ok, old_id) == (False, None) and "admin token" in detail
    with pytest.raises(RotationFailed, match="admin token"):
        issuer.revoke(KeyRotation("CLOUDFLARE_API_TOKEN", "cloudflare", old_id="tok-admin"))
    assert "tok-admin" in cf.tokens


def test_cloudflare_token_lost_by_an_interrupted_run_is_replaced_not_doubled() -> None:
    cf = FakeCloudflare()
    issuer = CloudflareTokenIssuer(cf, cf.verify)
    r = KeyRotation("CLOUDFLARE_API_TOKEN", "cloudflare", old_id="tok-1", new_name="rotated_1", issuing=True)
    issuer.issue(r)  # the run stops before recording it: its value is lost
    again = issuer.issue(r)  # the next run: the orphan is deleted before another is created
    assert [t.id for t in cf.tokens.values() if t.name.endswith("(rotated_1)")] == [again.id]
    r.new_id = again.id
    assert issuer.discard(r).startswith(f"deleted token(s) {again.id}")
    assert set(cf.tokens) == {"tok-admin", "tok-1"}


def test_cloudflare_unknown_token_fails_preflight() -> None:
    cf = FakeCloudflare()
    ok, old_id, detail = CloudflareTokenIssuer(cf, cf.verify).identify("cfrt_placeholder_0123456789")
    assert (ok, old_id) == (False, None) and "does not accept" in detail


def test_oauth_needs_a_source_that_differs_from_the_current_value() -> None:
    store = {"env:NEXT": "oauth_next_0123456789"}
    issuer = OAuthSecretIssuer("env:NEXT", store.__getitem__)
    assert issuer.identify("oauth_current_0123456789")[0] is True
    assert issuer.issue(KeyRotation("OAUTH_CLIENT_SECRET", "oauth")).value == "oauth_next_0123456789"
    assert issuer.identify("oauth_next_0123456789")[0] is False
    assert OAuthSecretIssuer(None, store.__getitem__).identify("x")[0] is False
    r = KeyRotation("OAUTH_CLIENT_SECRET", "oauth", old_fingerprint="sha256:abc")
    assert issuer.revoke(r).startswith("manual: delete the previous client secret")


@dataclass
class Key:
    id: str
    type: str
    name: str
    value: str | None = None


class FakeSupabase:
    def __init__(self) -> None:
        self.keys = [
            Key("k1", "secret", "default", "sb_secret_one_0123456789"),
            Key("k2", "publishable", "default", "sb_publishable_two_012345"),
        ]

    def find_api_key(self, value: str) -> Key | None:
        return next((k for k in self.keys if k.value == value), None)

    def api_keys(self, reveal: bool = False) -> list[Key]:
        return list(self.keys)

    def delete_api_key(self, key_id: str) -> None:
        self.keys = [k for k in self.keys if k.id != key_id]

    def project_accepts(self, value: str) -> tuple[bool, int]:
        return (True, 200) if self.find_api_key(value) else (False, 401)

    def create_api_key(self, kind: str, name: str, description: Any = None) -> Key:
        k = Key(f"k{len(self.keys) + 1}", kind, name, f"sb_{kind}_{name}_0123456789")
        self.keys.append(k)
        return k


def test_supabase_identify_checks_the_kind() -> None:
    sb = FakeSupabase()
    assert SupabaseKeyIssuer(sb, "secret").identify("sb_secret_one_0123456789")[:2] == (True, "k1")
    assert SupabaseKeyIssuer(sb, "publishable").identify("sb_secret_one_0123456789")[0] is False
    assert SupabaseKeyIssuer(sb, "secret").identify("sb_secret_gone_000000000")[0] is False


def test_supabase_revoke_is_idempotent_and_refusal_is_proved() -> None:
    sb = FakeSupabase()
    issuer = SupabaseKeyIssuer(sb, "secret")
    r = KeyRotation("SUPABASE_SECRET_KEY", "supabase", old_id="k1", old_fingerprint="sha256:x", new_name="rotated_1")
    assert issuer.refused(r, "sb_secret_one_0123456789") == (False, "API key k1 still exists")
    assert issuer.revoke(r) == "deleted API key k1"
    assert issuer.revoke(r) == "API key k1 was already deleted"
    ok, detail = issuer.refused(r, "sb_secret_one_0123456789")
    assert ok and "HTTP 401" in detail
    assert issuer.refused(r, None)[0] is True


def test_supabase_finds_a_key_issued_by_an_interrupted_run() -> None:
    sb = FakeSupabase()
    issuer = SupabaseKeyIssuer(sb, "secret")
    r = KeyRotation("SUPABASE_SECRET_KEY", "supabase", new_name="rotated_1", issuing=True)
    assert issuer.find_issued(r) is None
    sb.create_api_key("secret", "rotated_1")
    found = issuer.find_issued(r)
    assert found is not None and found.name == "rotated_1"


def test_supabase_issue_creates_a_named_key() -> None:
    sb = FakeSupabase()
    issued = SupabaseKeyIssuer(sb, "secret").issue(KeyRotation("SUPABASE_SECRET_KEY", "supabase", new_name="rotated_2"))
    assert issued.name == "rotated_2" and issued.value.startswith("sb_secret_")


def test_issuers_are_registered_by_provider_kind() -> None:
    from runbooks.procedures.rotation import ISSUERS

    assert dict(ISSUERS) == {
        "supabase": SupabaseKeyIssuer,
        "cloudflare": CloudflareTokenIssuer,
        "oauth": OAuthSecretIssuer,
    }


def test_build_issuers_looks_the_kind_up_and_shares_clients() -> None:
    from runbooks.inventory.models import RotatingKey
    from runbooks.procedures.rotation import build_issuers

    keys = [
        RotatingKey(name="A", provider="supabase", kind="secret"),
        RotatingKey(name="B", provider="supabase", kind="publishable"),
        RotatingKey(name="C", provider="oauth", kind="client_secret", source="env:NEXT"),
    ]
    client = object()
    out = build_issuers(object(), keys, supabase=client, resolve=lambda ref: "next")  # type: ignore[arg-type]  # no inventory needed: clients given
    a, b, c = out["A"], out["B"], out["C"]
    assert isinstance(a, SupabaseKeyIssuer) and isinstance(b, SupabaseKeyIssuer) and isinstance(c, OAuthSecretIssuer)
    assert a.keys is client and b.keys is client and (a.kind, b.kind) == ("secret", "publishable")
    assert c.source == "env:NEXT"


def test_an_unknown_kind_is_a_clear_error_and_a_kind_registers_once() -> None:
    from runbooks.inventory.models import RotatingKey
    from runbooks.procedures.rotation import UnknownIssuer, build_issuers, issuer

    key = RotatingKey.model_construct(name="X", provider="vault", kind="token", source=None)
    with pytest.raises(UnknownIssuer, match=r"X: no key issuer for provider 'vault' \(registered: cloudflare, oauth"):
        build_issuers(object(), [key])  # type: ignore[arg-type]  # refused before the inventory is read
    with pytest.raises(ValueError, match="an issuer of 'oauth' is already registered"):
        issuer("oauth")(OAuthSecretIssuer)
