"""Key and configuration runbooks through the runner against the twin: audit-config-placement,
rotate-keys (full, dry run, interrupted and resumed, faults) and rotate-jwt-signing-key."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from runner_fixtures import outcome_manifest as manifest
from twin_probes import assert_archive_clean, group_env, render, supabase, twin_secrets

from runbooks.archive.manifest import RunStatus
from runbooks.procedures import rotate_jwt
from runbooks.procedures.rotation import INTERRUPT_ENV, RotationStore
from runbooks.runner.run import RunOutcome, run_procedure
from runbooks.sandbox.components.render import OAUTH_NEXT
from runbooks.sandbox.emulators.supabase.users import PROBE_EMAIL
from runbooks.sandbox.emulators.supabase.values import SIGNING_KEYS
from runbooks.sandbox.fixture import Sandbox
from runbooks.secrets import fingerprint

pytestmark = [pytest.mark.sandbox]

APPLY = {"apply": "true", "confirm": "sandbox"}


def steps(out: RunOutcome) -> list[tuple[str, str, str]]:
    return [(s["key"], s["step"], s["status"]) for s in manifest(out)["results"]["steps"]]


# -- audit --------------------------------------------------------------------------------------------
def test_audit_passes_on_the_clean_twin(sandbox: Sandbox, archive: Path) -> None:
    out = run_procedure("audit-config-placement", archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    findings = m["results"]["findings"]
    assert findings and {f["status"] for f in findings} == {"PASS"}


# -- rotate-keys --------------------------------------------------------------------------------------
def test_dry_run_shows_the_plan_and_changes_nothing(sandbox: Sandbox, archive: Path) -> None:
    before, keys_before = group_env(sandbox), [k.id for k in supabase(sandbox).api_keys()]
    out = run_procedure("rotate-keys", params={"keys": "SUPABASE_SECRET_KEY,OAUTH_CLIENT_SECRET"}, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    assert [p["key"] for p in m["results"]["plan"]] == ["SUPABASE_SECRET_KEY", "OAUTH_CLIENT_SECRET"]
    assert "steps" not in m["results"]
    assert group_env(sandbox) == before and [k.id for k in supabase(sandbox).api_keys()] == keys_before
    assert not (archive / "state").exists()


def assert_refused(out: RunOutcome, param: str, *needles: str) -> None:
    """The run was refused with BadParameter naming ``param`` (the runner records it as ``refused``, exit 2)."""
    assert out.status is RunStatus.REFUSED and out.exit_code == 2, manifest(out).get("error")
    assert out.error is not None and out.error.kind == "BadParameter"
    # the value is shown only when it is one of the allowed values (a refused value may be a pasted secret)
    assert out.error.message.startswith((f"{param}=", f"{param} (value not shown): ")), out.error.message
    for needle in needles:
        assert needle in out.error.message, out.error.message


@pytest.mark.parametrize(
    ("params", "param", "needles"),
    [
        ({"keys": "SUPABASE_SECRET_KEY,NOT_A_KEY"}, "keys", ("1 name(s) not rotating", "one of: SUPABASE_SECRET_KEY")),
        ({"keys": "SPECTRAL_GENERATION"}, "keys", ("code-coupled",)),
        ({"keys": " , "}, "keys", ("names no key",)),
        ({"keys": "SUPABASE_SECRET_KEY", "manual_revoked": "SUPABASE_SECRET_KEY"}, "manual_revoked", ("leave it",)),
        ({"keys": "OAUTH_CLIENT_SECRET", "manual_revoked": "OAUTH_CLIENT_SECRET"}, "manual_revoked", ("awaiting",)),
        ({"keys": "SUPABASE_SECRET_KEY", "verify_timeout_seconds": "0"}, "verify_timeout_seconds", ("from 1 to 3600",)),
    ],
)
def test_bad_keys_are_refused_before_any_change(
    sandbox: Sandbox, archive: Path, params: dict[str, str], param: str, needles: tuple[str, ...]
) -> None:
    before, keys_before = group_env(sandbox), [k.id for k in supabase(sandbox).api_keys()]
    out = run_procedure("rotate-keys", params={**params, **APPLY}, archive_root=archive)
    assert_refused(out, param, *needles)
    assert group_env(sandbox) == before and [k.id for k in supabase(sandbox).api_keys()] == keys_before
    assert not (archive / "state").exists()


def test_full_rotation_and_no_key_value_in_the_archive(sandbox: Sandbox, archive: Path) -> None:
    seen = twin_secrets(sandbox)
    old = group_env(sandbox)
    out = run_procedure(
        "rotate-keys", params={"keys": "SUPABASE_SECRET_KEY,SUPABASE_PUBLISHABLE_KEY", **APPLY}, archive_root=archive
    )
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    new = group_env(sandbox)
    sb, r = supabase(sandbox), render(sandbox)
    for key in ("SUPABASE_SECRET_KEY", "SUPABASE_PUBLISHABLE_KEY"):
        assert new[key] != old[key]
        assert sb.project_accepts(old[key]) == (False, 401)  # the old key is refused
        assert sb.project_accepts(new[key]) == (True, 200)
        for s in r.services():
            if s.type == "cron_job":  # runs between its runs only: no process to report
                continue
            code, body = r.health(s)
            assert code == 200 and body["keys"][key] == fingerprint(new[key])
        assert (key, "verify_old_refused", "done") in steps(out)
    assert_archive_clean(archive, seen | twin_secrets(sandbox))
    # the audit still passes after the rotation
    assert run_procedure("audit-config-placement", archive_root=archive).status is RunStatus.SUCCEEDED


@pytest.fixture
def restage_oauth_secret(sandbox: Sandbox) -> Iterator[None]:
    """After an OAuth rotation the group holds the staged next client secret: stage a new one, as on-call would in
    the identity provider before the next rotation, so that later tests on this worker's twin (a dry run that
    plans OAUTH_CLIENT_SECRET) see a rotatable key whatever order they run in."""
    yield
    write = sandbox.root / "secrets" / OAUTH_NEXT
    write.write_text("oauth-next-" + secrets.token_urlsafe(24))


def test_oauth_rotation_awaits_the_manual_revoke_and_the_audit_warns(
    sandbox: Sandbox, archive: Path, restage_oauth_secret: None
) -> None:
    seen = twin_secrets(sandbox)
    keys = {"keys": "OAUTH_CLIENT_SECRET", **APPLY}
    out = run_procedure("rotate-keys", params=keys, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    assert group_env(sandbox)["OAUTH_CLIENT_SECRET"] == sandbox.secret("oauth_next_client_secret")
    # not claimed complete: the run record and the state say what is pending and what to do
    assert m["results"]["status"] == "awaiting_manual_revoke"
    assert m["results"]["state"]["OAUTH_CLIENT_SECRET"]["status"] == "awaiting_manual_revoke"
    [pending] = m["results"]["pending"]
    assert pending["status"] == "WARN" and "manual_revoked=OAUTH_CLIENT_SECRET" in pending["to do"]
    assert ("OAUTH_CLIENT_SECRET", "revoke_old", "awaiting manual revoke") in steps(out)
    assert not any(s[1] == "verify_old_refused" for s in steps(out))
    store = RotationStore.for_environment("sandbox", archive, sandbox_root=sandbox.root)  # keyed by the twin's id
    assert store.path.name.startswith("sandbox.") and store.path.name != "sandbox.json"
    state = json.loads(store.path.read_text())
    assert state["OAUTH_CLIENT_SECRET"]["status"] == "awaiting_manual_revoke"
    # the daily audit reports it as a WARN with the instruction (and does not fail)
    audit = run_procedure("audit-config-placement", archive_root=archive)
    assert audit.status is RunStatus.SUCCEEDED
    [warn] = [f for f in manifest(audit)["results"]["findings"] if f["check"] == "config.rotation_complete"]
    assert warn["status"] == "WARN" and "identity provider" in warn["remediation"]
    # on-call revoked it by hand and confirms: the rotation completes
    done = run_procedure("rotate-keys", params={**keys, "manual_revoked": "OAUTH_CLIENT_SECRET"}, archive_root=archive)
    m = manifest(done)
    assert done.status is RunStatus.SUCCEEDED, m.get("error")
    assert m["results"]["status"] == "done" and m["results"]["pending"] == []
    assert ("OAUTH_CLIENT_SECRET", "revoke_old", "confirmed by on-call") in steps(done)
    audit = run_procedure("audit-config-placement", archive_root=archive)
    assert {f["status"] for f in manifest(audit)["results"]["findings"]} == {"PASS"}
    assert_archive_clean(archive, seen | twin_secrets(sandbox))


def test_interrupted_after_the_group_update_resumes_with_one_new_key(
    sandbox: Sandbox, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = supabase(sandbox)
    old_value = group_env(sandbox)["SUPABASE_SECRET_KEY"]
    ids_before = {k.id for k in sb.api_keys()}
    seen = twin_secrets(sandbox)
    monkeypatch.setenv(INTERRUPT_ENV, "write_group")
    first = run_procedure("rotate-keys", params=APPLY, archive_root=archive)
    assert first.status is not RunStatus.SUCCEEDED
    assert "interrupted after step write_group" in str(manifest(first).get("error"))
    mid = group_env(sandbox)["SUPABASE_SECRET_KEY"]
    assert mid != old_value  # the group holds the new key; services still run the old one, which still works
    assert sb.project_accepts(old_value)[0]
    monkeypatch.delenv(INTERRUPT_ENV)

    second = run_procedure("rotate-keys", params=APPLY, archive_root=archive)
    m = manifest(second)
    assert second.status is RunStatus.SUCCEEDED, m.get("error")
    assert m["results"]["plan"][0]["state"].startswith("resuming")
    assert ("SUPABASE_SECRET_KEY", "issue", "already done") in steps(second)
    assert ("SUPABASE_SECRET_KEY", "write_group", "already done") in steps(second)
    ids_after = {k.id for k in sb.api_keys()}
    assert len(ids_after - ids_before) == 1, "exactly one new key across both runs"
    assert group_env(sandbox)["SUPABASE_SECRET_KEY"] == mid
    assert sb.project_accepts(old_value) == (False, 401)
    assert_archive_clean(archive, seen | twin_secrets(sandbox))


# -- rotate-jwt-signing-key ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "param"),
    [({"token_lifetime_seconds": "-1"}, "token_lifetime_seconds"), ({"probe_email": "probe"}, "probe_email")],
)
def test_jwt_rotation_refuses_bad_values_before_any_change(
    sandbox: Sandbox, archive: Path, params: dict[str, str], param: str
) -> None:
    before = [(k.id, k.status) for k in supabase(sandbox).signing_keys()]
    out = run_procedure("rotate-jwt-signing-key", params={**params, **APPLY}, archive_root=archive)
    assert_refused(out, param)
    assert [(k.id, k.status) for k in supabase(sandbox).signing_keys()] == before


def test_jwt_signing_key_rotation(sandbox: Sandbox, archive: Path) -> None:
    sb = supabase(sandbox)
    [old] = [k for k in sb.signing_keys() if k.status == "in_use"]
    out = run_procedure("rotate-jwt-signing-key", params=APPLY, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    done = {(s["step"], s["status"]) for s in m["results"]["steps"]}
    assert {
        ("verify_overlap", "done"),
        ("verify_new", "done"),
        ("verify_codex", "done"),
        ("wait", "done"),
        ("revoke", "done"),
        ("verify_revoked", "done"),
    } <= done
    status = {k.id: k.status for k in sb.signing_keys()}
    assert status[old.id] == "revoked"
    assert old.id not in [k["kid"] for k in sb.jwks()["keys"]]
    codex_step = next(s for s in m["results"]["steps"] if s["step"] == "verify_codex")
    assert "HTTP 401 with a forged signature" in codex_step["detail"]
    assert_archive_clean(archive, twin_secrets(sandbox))
    # codex really validates through the JWKS: a fresh token passes; a token with a future expiry signed by the
    # revoked key, or by a key the JWKS never published, is refused
    env = sandbox.inventory()
    fresh = rotate_jwt.build(env, probe_email=PROBE_EMAIL, probe_password_ref="sandbox:supabase_probe_password")
    good = fresh.token_source()
    assert codex(sandbox, good).status_code == 200
    claims = {**jwt.decode(good, options={"verify_signature": False}), "exp": int(time.time()) + 300}
    revoked_key = ECAlgorithm.from_jwk(json.dumps(twin_private_jwk(sandbox, old.id)))
    assert isinstance(revoked_key, ec.EllipticCurvePrivateKey)
    by_revoked = jwt.encode(claims, revoked_key, algorithm="ES256", headers={"kid": old.id})
    r = codex(sandbox, by_revoked)
    assert r.status_code == 401 and f"unknown signing key {old.id}" in r.json()["detail"]
    stranger = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "not-in-jwks"}
    )
    r = codex(sandbox, stranger)
    assert r.status_code == 401 and "unknown signing key not-in-jwks" in r.json()["detail"]
    assert codex(sandbox, None).status_code == 401


def codex(sbx: Sandbox, token: str | None) -> Any:
    from runbooks.providers.tls import TlsClient

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TlsClient.from_environment(sbx.inventory()).request("codex.runspectral.com", "GET", "/", headers=headers)


def twin_private_jwk(sbx: Sandbox, kid: str) -> dict[str, Any]:
    """The Supabase twin's private key ``kid`` (twin-internal state, read only to forge a test token)."""
    state = json.loads((sbx.root / "supabase" / "state.json").read_text())
    return dict(state[SIGNING_KEYS][kid]["_private_jwk"])
