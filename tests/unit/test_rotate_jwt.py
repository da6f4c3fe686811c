"""rotate_jwt against the Supabase twin's keys/auth routers: full rotation, resume from each phase, the wait
for the token lifetime, verification failures, and the validators' refusal paths."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from test_render_harness import PROJECT_REF, supabase_twin

from runbooks.plan import authorise
from runbooks.procedures import rotate_jwt as rj
from runbooks.providers.supabase_keys import SupabaseKeys

EMAIL = "runbook-probe@runspectral.com"
AUTH = authorise("sandbox")  # what runbooks.guard_apply returns once it passed


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with supabase_twin(tmp_path) as url:
        yield tmp_path, url


def providers(project: tuple[Path, str]) -> tuple[SupabaseKeys, rj.TokenValidator, object]:
    root, url = project
    sb = SupabaseKeys(url, (root / "secrets" / "supabase_access_token").read_text(), PROJECT_REF, url)
    publishable = next(k for k in sb.api_keys(reveal=True) if k.type == "publishable").value
    password = (root / "secrets" / "supabase_probe_password").read_text()
    validator = rj.TokenValidator(url, publishable)
    return sb, validator, lambda: sb.password_token(EMAIL, password, publishable)


def rotator(project: tuple[Path, str], **kw: object) -> rj.JwtRotator:
    sb, validator, tokens = providers(project)
    opts: dict[str, object] = {"environment": "sandbox", "lifetime": 5, "log": lambda _: None, **kw}
    return rj.JwtRotator(sb, validator, tokens, **opts)  # type: ignore[arg-type]


def statuses(sb: SupabaseKeys) -> dict[str, str]:
    return {k.id: k.status for k in sb.signing_keys()}


def test_full_rotation_waits_the_token_lifetime_before_revoking(project: tuple[Path, str]) -> None:
    r = rotator(project, codex=lambda tok: (True, "codex accepted"))
    before = statuses(r.keys)
    [old_id] = before
    plan = r.plan()
    assert plan.phase == "fresh"
    assert [s["step"] for s in plan.steps()][:3] == ["standby", "jwks_publishes", "rotate"]
    started = time.time()
    rows = r.apply(plan, AUTH)
    after = statuses(r.keys)
    assert after[old_id] == "revoked"
    [new_id] = [k for k, s in after.items() if s == "in_use"]
    assert {(x.step, x.status) for x in rows} >= {
        ("standby", "done"),
        ("jwks_publishes", "done"),
        ("rotate", "done"),
        ("verify_overlap", "done"),
        ("verify_new", "done"),
        ("verify_codex", "done"),
        ("wait", "done"),
        ("revoke", "done"),
        ("verify_revoked", "done"),
    }
    assert time.time() - started >= 5  # revoked only after the token lifetime
    kids = [k["kid"] for k in r.keys.jwks()["keys"]]
    assert old_id not in kids and new_id in kids
    assert rj.kid_of(r.token_source()) == new_id  # type: ignore[arg-type]


def test_resume_after_rotation_only_waits_and_revokes(project: tuple[Path, str]) -> None:
    r = rotator(project)
    [old_id] = statuses(r.keys)
    standby = r.keys.create_signing_key("ES256", "standby")
    r.keys.set_signing_key_status(standby.id, "in_use")  # a run that stopped right after rotating
    plan = r.plan()
    assert plan.phase == "rotated" and plan.revoke_at is not None
    assert [s["step"] for s in plan.steps()] == ["wait", "revoke", "verify_revoked"]
    rows = r.apply(plan, AUTH)
    assert [x.step for x in rows] == ["wait", "revoke", "verify_revoked"]
    assert statuses(r.keys)[old_id] == "revoked"


def test_resume_with_a_standby_reuses_it(project: tuple[Path, str]) -> None:
    r = rotator(project)
    standby = r.keys.create_signing_key("ES256", "standby")
    plan = r.plan()
    assert plan.phase == "standby_ready"
    rows = r.apply(plan, AUTH)
    assert ("standby", "already done") in [(x.step, x.status) for x in rows]
    assert statuses(r.keys)[standby.id] == "in_use"
    assert len(statuses(r.keys)) == 2  # no extra key created


def test_long_lifetime_stops_after_rotation_and_says_when_to_rerun(project: tuple[Path, str]) -> None:
    r = rotator(project, lifetime=3600, max_wait=10)
    [old_id] = statuses(r.keys)
    rows = r.apply(r.plan(), AUTH)
    assert rows[-1].step == "wait" and rows[-1].status == "waiting" and "re-run after" in rows[-1].detail
    assert statuses(r.keys)[old_id] == "previously_used"  # not revoked: tokens may still be valid
    again = rotator(project, lifetime=3600, max_wait=10)
    plan = again.plan()
    assert plan.phase == "rotated"
    assert again.apply(plan, AUTH)[-1].status == "waiting"


def test_codex_refusal_fails_before_revoking(project: tuple[Path, str]) -> None:
    r = rotator(project, codex=lambda tok: (False, "codex: HTTP 401 with the new token"))
    [old_id] = statuses(r.keys)
    with pytest.raises(rj.JwtRotationFailed, match="investigate before revoking"):
        r.apply(r.plan(), AUTH)
    assert statuses(r.keys)[old_id] == "previously_used"


def test_jwks_that_never_publishes_the_standby_refuses_to_rotate(project: tuple[Path, str]) -> None:
    r = rotator(project, jwks_timeout=0.5, sleep=lambda s: time.sleep(0.1))
    r._jwks_kids = lambda: []  # type: ignore[method-assign]  # a CDN serving a stale JWKS
    [old_id] = statuses(r.keys)
    with pytest.raises(rj.JwtRotationFailed, match="nothing was rotated"):
        r.apply(r.plan(), AUTH)
    assert statuses(r.keys)[old_id] == "in_use"


def test_validator_refuses_forged_and_expired_tokens(project: tuple[Path, str]) -> None:
    _, validator, tokens = providers(project)
    tok = tokens()  # type: ignore[operator]
    assert validator.validates(tok) == (True, "validates through JWKS and supabase-py")
    claims = jwt.decode(tok, options={"verify_signature": False})
    from cryptography.hazmat.primitives.asymmetric import ec

    forged = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": rj.kid_of(tok)}
    )
    ok, detail = validator.validates(forged)
    assert not ok and "JWKS" in detail and "supabase-py" in detail
    expires = float(claims["exp"])
    while time.time() <= expires + 1:  # until the token's own expiry has passed (not a fixed wait)
        time.sleep(max(0.05, expires + 1 - time.time()))
    ok, detail = validator.validates(tok)
    assert not ok and "ExpiredSignatureError" in detail


def test_more_than_one_key_in_use_is_refused(project: tuple[Path, str]) -> None:
    r = rotator(project)
    r.keys.signing_keys = lambda: []  # type: ignore[method-assign]
    plan = r.plan()
    assert not plan.safe and plan.in_use is None
    with pytest.raises(rj.JwtRefused, match=r"preflight failed: nothing was changed .*exactly one signing key in use"):
        plan.raise_if_unsafe()
    with pytest.raises(rj.JwtRefused):
        r.apply(plan, AUTH)


@pytest.mark.parametrize(
    ("override", "param", "message"),
    [
        (
            {"algorithm": "HS256"},
            "algorithm",
            "algorithm (value not shown): not an asymmetric signing algorithm; use ES256",
        ),
        ({"probe_email": "probe"}, "probe_email", "probe_email (value not shown): not an email address"),
        ({"probe_password_ref": "hunter2"}, "probe_password_ref", "probe_password_ref (value not shown): not a secret"),
        ({"lifetime": -5}, "token_lifetime_seconds", "token_lifetime_seconds (value not shown): a negative lifetime"),
        ({"max_wait": -1.0}, "max_wait_seconds", "max_wait_seconds (value not shown): a negative wait"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_read(
    override: dict[str, Any], param: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbooks.errors import BadParameter
    from runbooks.providers import supabase_keys

    def no_provider(*_: Any, **__: Any) -> Any:
        raise AssertionError("a provider was built before the parameters were checked")

    monkeypatch.setattr(supabase_keys.SupabaseKeys, "from_environment", no_provider)
    good: dict[str, Any] = {
        "probe_email": "runbook-probe@runspectral.com",
        "probe_password_ref": "sandbox:supabase_probe_password",
        "lifetime": None,
        "algorithm": "ES256",
        "max_wait": 900.0,
    }
    rj.check_parameters(**good)  # the defaults pass
    with pytest.raises(BadParameter) as e:
        rj.build(object(), **{**good, **override})
    assert e.value.name == param and str(e.value).startswith(message), str(e.value)
