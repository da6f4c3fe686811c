"""The Supabase twin's state model without HTTP: bootstrap, callers, API keys, signing keys and sign-in,
posture, services' health, backups/PITR and restore points (the database is a fake). Through HTTP and the
providers: test_supabase_keys.py, test_platform_checks.py, test_supabase_backups.py."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from runbooks.sandbox.emulators.common import JsonState
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.models import Posture, SupabaseBackend
from runbooks.sandbox.emulators.supabase.users import PROBE_EMAIL
from runbooks.sandbox.emulators.supabase.values import SIGNING_KEYS

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_model_test_token"
INVENTORY = {
    "pitr_days": 10,
    "platform": {"supabase": {"ssl_enforced": True, "allowed_cidrs": ["192.0.2.0/24", "::/0"]}},
}
ISSUER = "http://twin/auth/v1"


class FakeDatabase:
    """A database whose base backup was taken an hour ago; recoveries wait for ``release`` and may fail."""

    def __init__(self) -> None:
        self.base: datetime | None = datetime.now(UTC) - timedelta(hours=1)
        self.recovered: list[datetime] = []
        self.fail: Exception | None = None
        self.release = threading.Event()
        self.release.set()
        self.up = (True, "")

    def connected(self, timeout_ms: int) -> tuple[bool, str]:
        return self.up

    def base_backup_time(self) -> datetime | None:
        return self.base

    def recover_to(self, target: datetime) -> None:
        self.release.wait(10)
        if self.fail:
            raise self.fail
        self.recovered.append(target)

    def create_restore_point(self, name: str) -> str:
        return "0/3000060"


def _backend(root: Path, faults: frozenset[str] = frozenset(), db: FakeDatabase | None = None) -> SupabaseBackend:
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "supabase_access_token").write_text(TOKEN + "\n")
    return SupabaseBackend(
        root=root,
        state=JsonState(root / "state.json"),
        project={"ref": REF, "region": "eu-west-1"},
        faults=faults,
        inventory=INVENTORY,
        database=db or FakeDatabase(),
    )


@pytest.fixture
def sb(tmp_path: Path) -> SupabaseBackend:
    return _backend(tmp_path)


def _status(exc: pytest.ExceptionInfo[SupabaseError]) -> int:
    return exc.value.status


def _id(item: dict[str, Any]) -> str:
    return str(item["id"])


def _password(root: Path) -> str:
    return (root / "secrets" / "supabase_probe_password").read_text()


def _sign_in(sb: SupabaseBackend, password: str) -> str:
    return str(sb.sign_in("password", {"email": PROBE_EMAIL, "password": password}, ISSUER)["access_token"])


# -- a new project -------------------------------------------------------------------------------------
def test_a_new_project_has_keys_a_signing_key_and_a_probe_user_whose_secrets_are_written(tmp_path: Path) -> None:
    sb = _backend(tmp_path)
    kinds = sorted(k["type"] for k in sb.keys.list(reveal=True))
    assert kinds == ["publishable", "secret"]
    for kind in kinds:
        value = (tmp_path / "secrets" / f"supabase_{kind}_key").read_text()
        assert sb.api_key_of(value)["type"] == kind
    [key] = sb.signing_keys.list()["keys"]
    assert key["status"] == "in_use" and key["algorithm"] == "ES256" and "_private_jwk" not in key
    assert _password(tmp_path)
    assert sb.auth_config() == {"jwt_exp": 5}


def test_a_restarted_twin_keeps_its_state_and_secrets(tmp_path: Path) -> None:
    first = _backend(tmp_path)
    password, keys = _password(tmp_path), first.keys.list(reveal=True)
    again = _backend(tmp_path)
    assert sorted(again.keys.list(reveal=True), key=_id) == sorted(keys, key=_id) and _password(tmp_path) == password
    assert len(again.signing_keys.list()["keys"]) == 1


# -- callers -------------------------------------------------------------------------------------------
def test_management_calls_need_the_access_token_and_the_projects_ref(sb: SupabaseBackend, tmp_path: Path) -> None:
    sb.authorize(TOKEN, REF)
    with pytest.raises(SupabaseError) as e:
        sb.authorize("sbp_wrong", REF)
    assert _status(e) == 401
    with pytest.raises(SupabaseError) as e:
        sb.authorize("", REF)
    assert _status(e) == 401
    with pytest.raises(SupabaseError) as e:
        sb.authorize(TOKEN, "zzzzzzzzzzzzzzzzzzzz")
    assert _status(e) == 404
    (tmp_path / "secrets" / "supabase_access_token").unlink()
    with pytest.raises(SupabaseError) as e:
        sb.authorize(TOKEN, REF)
    assert _status(e) == 401


def test_the_rest_root_takes_any_live_key_with_its_role(sb: SupabaseBackend, tmp_path: Path) -> None:
    secret = (tmp_path / "secrets" / "supabase_secret_key").read_text()
    publishable = (tmp_path / "secrets" / "supabase_publishable_key").read_text()
    assert sb.rest_root(secret)["role"] == "service_role"
    assert sb.rest_root(publishable)["role"] == "anon"
    for bad in ("", "sb_secret_unknown"):
        with pytest.raises(SupabaseError) as e:
            sb.rest_root(bad)
        assert _status(e) == 401


# -- API keys ------------------------------------------------------------------------------------------
def test_a_secret_key_is_shown_once_then_masked_and_refused_once_deleted(sb: SupabaseBackend) -> None:
    made = sb.keys.create({"type": "secret", "name": "rotation_next"})
    value = made["api_key"]
    assert value.startswith("sb_secret_")
    assert sb.keys.get(made["id"], reveal=False)["api_key"] == made["prefix"] + "·" * 8
    assert sb.keys.get(made["id"], reveal=True)["api_key"] == value
    assert sb.api_key_of(value)["id"] == made["id"]
    renamed = sb.keys.update(made["id"], {"name": "rotation_live", "description": "d"}, reveal=False)
    assert renamed["name"] == "rotation_live" and renamed["description"] == "d"
    sb.keys.delete(made["id"], reveal=False)
    with pytest.raises(SupabaseError) as e:
        sb.api_key_of(value)
    assert _status(e) == 401
    with pytest.raises(SupabaseError) as e:
        sb.keys.get(made["id"], reveal=False)
    assert _status(e) == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "legacy", "name": "abcd"}, "type must be"),
        ({"type": "secret", "name": "AB"}, "name must match"),
        ({"type": "secret", "name": "abcd", "scope": "all"}, "unknown fields ['scope']"),
        ([], "JSON object"),
    ],
)
def test_invalid_api_keys_are_refused(sb: SupabaseBackend, body: Any, message: str) -> None:
    with pytest.raises(SupabaseError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        sb.keys.create(body)
    assert _status(e) == 400
    key_id = sb.keys.list(reveal=False)[0]["id"]
    with pytest.raises(SupabaseError, match="name must match"):
        sb.keys.update(key_id, {"name": "Bad Name"}, reveal=False)


# -- signing keys and sign-in ----------------------------------------------------------------------------
def test_rotation_standby_to_in_use_retires_the_old_key_and_tokens_follow(sb: SupabaseBackend, tmp_path: Path) -> None:
    old = sb.signing_keys.list()["keys"][0]
    before = _sign_in(sb, _password(tmp_path))
    new = sb.signing_keys.create({"algorithm": "RS256"})
    assert new["status"] == "standby"
    assert {k["kid"] for k in sb.signing_keys.jwks()["keys"]} == {old["id"], new["id"]}
    assert sb.signing_keys.update(new["id"], {"status": "in_use"})["status"] == "in_use"
    assert sb.signing_keys.get(old["id"])["status"] == "previously_used"
    after = _sign_in(sb, _password(tmp_path))
    assert jwt.get_unverified_header(after)["kid"] == new["id"]
    assert sb.user_of(before)["email"] == PROBE_EMAIL  # the previous key still verifies
    sb.signing_keys.update(old["id"], {"status": "revoked"})
    with pytest.raises(SupabaseError, match="invalid JWT") as e:
        sb.user_of(before)
    assert _status(e) == 401
    assert sb.user_of(after)["email"] == PROBE_EMAIL
    assert sb.signing_keys.remove(old["id"])["id"] == old["id"]


def test_signing_key_rules(sb: SupabaseBackend) -> None:
    in_use = sb.signing_keys.list()["keys"][0]["id"]
    cases: list[tuple[Any, str]] = [
        (lambda: sb.signing_keys.update(in_use, {"status": "revoked"}), "cannot become revoked"),
        (lambda: sb.signing_keys.update(in_use, {"status": "in_use", "x": 1}), "exactly"),
        (lambda: sb.signing_keys.remove(in_use), "revoke it first"),
        (lambda: sb.signing_keys.create({"algorithm": "HS256"}), "not supported"),
        (lambda: sb.signing_keys.create({"algorithm": "ES256", "private_jwk": {}}), "importing"),
        (lambda: sb.signing_keys.create({"algorithm": "ES256", "status": "revoked"}), "standby or in_use"),
        (lambda: sb.signing_keys.create({"algorithm": "ES256", "kid": "x"}), "unknown fields"),
    ]
    for call, message in cases:
        with pytest.raises(SupabaseError, match=message) as e:
            call()
        assert _status(e) == 400
    with pytest.raises(SupabaseError) as e:
        sb.signing_keys.get("no-such-key")
    assert _status(e) == 404
    created = sb.signing_keys.create({"algorithm": "ES256", "status": "in_use"})  # rotates at once
    assert sb.signing_keys.get(in_use)["status"] == "previously_used" and created["status"] == "in_use"


def test_sign_in_refuses_wrong_credentials_and_other_grants(sb: SupabaseBackend, tmp_path: Path) -> None:
    with pytest.raises(SupabaseError, match="Invalid login credentials"):
        sb.sign_in("password", {"email": PROBE_EMAIL, "password": "wrong"}, ISSUER)
    with pytest.raises(SupabaseError, match="Invalid login credentials"):
        sb.sign_in("password", {"email": "nobody@example.com", "password": "x"}, ISSUER)
    with pytest.raises(SupabaseError, match="grant_type=password"):
        sb.sign_in("refresh_token", {}, ISSUER)
    token = sb.sign_in("password", {"email": PROBE_EMAIL, "password": _password(tmp_path)}, ISSUER)
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["exp"] - claims["iat"] == 5 == token["expires_in"]
    with pytest.raises(SupabaseError) as e:
        sb.user_of("not-a-jwt")
    assert _status(e) == 401


def test_fault_signing_key_legacy_makes_sign_ins_fail(tmp_path: Path) -> None:
    sb = _backend(tmp_path, frozenset({"signing-key-legacy"}))
    statuses = {k["algorithm"]: k["status"] for k in sb.signing_keys.list()["keys"]}
    assert statuses == {"HS256": "in_use", "ES256": "standby"}
    with pytest.raises(SupabaseError, match="no private part") as e:
        _sign_in(sb, _password(tmp_path))
    assert _status(e) == 500
    _backend(tmp_path, frozenset({"signing-key-legacy"}))  # made once
    state = JsonState(tmp_path / "state.json").section(SIGNING_KEYS)
    assert [k["algorithm"] for k in state.values()].count("HS256") == 1


# -- posture -------------------------------------------------------------------------------------------
def test_posture_follows_the_inventory(sb: SupabaseBackend) -> None:
    assert sb.addons()["selected_addons"][0]["variant"]["id"] == "pitr_14"  # the smallest covering 10 days
    assert sb.ssl_enforcement()["currentConfig"]["database"] is True
    assert sb.network_restrictions()["config"] == {"dbAllowedCidrs": ["192.0.2.0/24"], "dbAllowedCidrsV6": ["::/0"]}


def test_posture_faults(tmp_path: Path) -> None:
    faults = frozenset(
        {"pitr-window-short", "ssl-not-enforced", "network-restrictions-drift", "auth-token-lifetime-long"}
    )
    sb = _backend(tmp_path, faults)
    assert sb.addons()["selected_addons"][0]["variant"]["id"] == "pitr_7"
    assert sb.ssl_enforcement()["currentConfig"]["database"] is False
    assert "10.0.0.0/8" in sb.network_restrictions()["config"]["dbAllowedCidrs"]
    assert sb.auth_config() == {"jwt_exp": 86400}
    assert Posture.of({"pitr_days": 60}, frozenset()).pitr_days == 28  # the largest variant when none covers
    (tmp_path / "other").mkdir()
    assert _backend(tmp_path / "other", frozenset({"pitr-disabled"})).addons()["selected_addons"] == []


# -- the project and its health ----------------------------------------------------------------------------
def test_project_and_health(tmp_path: Path) -> None:
    db = FakeDatabase()
    sb = _backend(tmp_path, db=db)
    assert sb.get_project()["ref"] == REF and sb.get_project()["status"] == "ACTIVE_HEALTHY"
    rows = sb.services_health(["auth,db", "rest"], 2000)
    assert [(r["name"], r["healthy"]) for r in rows] == [("auth", True), ("db", True), ("rest", True)]
    db.up = (False, "OperationalError")
    [row] = sb.services_health(["db"], 2000)
    assert row["status"] == "UNHEALTHY" and row["error"] == "OperationalError"
    with pytest.raises(SupabaseError, match="unknown service") as e:
        sb.services_health(["db", "mainframe"], 2000)
    assert _status(e) == 400


# -- backups and PITR ----------------------------------------------------------------------------------------
def test_backups_list_the_base_backup_and_the_window(tmp_path: Path) -> None:
    db = FakeDatabase()
    sb = _backend(tmp_path, db=db)
    body = sb.list_backups()
    assert body["region"] == "eu-west-1" and body["pitr_enabled"] is True
    assert body["backups"][0]["is_physical_backup"] is True
    assert body["physical_backup_data"]["earliest_physical_backup_date_unix"] == int(db.base.timestamp()) + 1  # type: ignore[union-attr]  # set by the fake
    db.base = None
    assert sb.list_backups()["backups"] == [] and sb.list_backups()["physical_backup_data"] == {}


def test_a_recovery_runs_in_the_background_and_the_project_follows(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.release.clear()
    sb = _backend(tmp_path, db=db)
    target = int(time.time()) - 60
    restore_id = sb.restore_pitr({"recovery_time_target_unix": target})
    assert sb.status == "RESTORING" and sb.services_health(["db"], 2000)[0]["status"] == "COMING_UP"
    with pytest.raises(SupabaseError) as e:
        sb.restore_pitr({"recovery_time_target_unix": target})
    assert _status(e) == 409
    with pytest.raises(SupabaseError, match="project is RESTORING"):
        sb.create_restore_point({"name": "before"})
    db.release.set()
    assert sb.restores.thread is not None
    sb.restores.thread.join(10)
    assert db.recovered == [datetime.fromtimestamp(target, UTC)]
    assert sb.status == "ACTIVE_HEALTHY" and sb.restores.record(restore_id)["status"] == "COMPLETED"


def test_a_failed_recovery_is_recorded_and_the_next_one_may_start(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.fail = RuntimeError("postgres exited during recovery")
    sb = _backend(tmp_path, db=db)
    restore_id = sb.restore_pitr({"recovery_time_target_unix": int(time.time()) - 60})
    assert sb.restores.thread is not None
    sb.restores.thread.join(10)
    record = sb.restores.record(restore_id)
    assert sb.status == "RESTORE_FAILED" and record["status"] == "FAILED" and "postgres exited" in record["error"]
    db.fail = None
    second = sb.restore_pitr({"recovery_time_target_unix": int(time.time()) - 60})
    assert second != restore_id


@pytest.mark.parametrize(
    "target", [-1, True, "1700000000", 0, 10**12], ids=["negative", "bool", "string", "before-window", "future"]
)
def test_recovery_targets_outside_the_window_are_refused(sb: SupabaseBackend, target: Any) -> None:
    with pytest.raises(SupabaseError) as e:
        sb.restore_pitr({"recovery_time_target_unix": target})
    assert _status(e) == 400 and sb.status == "ACTIVE_HEALTHY"


def test_fault_pitr_disabled_refuses_recovery(tmp_path: Path) -> None:
    sb = _backend(tmp_path, frozenset({"pitr-disabled"}))
    assert sb.list_backups()["pitr_enabled"] is False
    with pytest.raises(SupabaseError, match="not enabled"):
        sb.restore_pitr({"recovery_time_target_unix": int(time.time()) - 60})


def test_restore_points(sb: SupabaseBackend) -> None:
    with pytest.raises(SupabaseError, match="no restore point") as e:
        sb.restores.point(None)
    assert _status(e) == 404
    assert sb.create_restore_point({"name": "before_drill"})["status"] == "AVAILABLE"
    assert sb.restores.point(None)["name"] == "before_drill" == sb.restores.point("before_drill")["name"]
    with pytest.raises(SupabaseError) as e:
        sb.restores.point("other")
    assert _status(e) == 404
    for bad in ("", "x" * 21, 7):
        with pytest.raises(SupabaseError, match="1 to 20 characters"):
            sb.create_restore_point({"name": bad})
