"""The rotate-keys procedure (procedures.rotation) against the standalone keys twin: full rotation, resume after
interruption with exactly one new key, refusal on a key pinned on a service, stale services stop the rotation
before revoke."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_render_harness import KeysTwin, keys_twin

from runbooks.errors import BadParameter
from runbooks.inventory.models import RotatingKey
from runbooks.plan import authorise
from runbooks.procedures import rotation as rk
from runbooks.providers.render import RenderProvider
from runbooks.providers.supabase_keys import SupabaseKeys
from runbooks.secrets import fingerprint

GROUP = "spectral-sandbox-keys"
AUTH = authorise("sandbox")  # what runbooks.guard_apply returns once it passed


@pytest.fixture()
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeysTwin]:
    """A fresh twin for a test that rotates (changes keys, the group, the services)."""
    with keys_twin(tmp_path / "sandbox") as t:
        monkeypatch.setenv("RUNBOOKS_SANDBOX", str(t.root))
        yield t


@pytest.fixture(scope="module")
def reader_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeysTwin]:
    """One twin shared by the tests that only read it (parameters, plans, preflights); each asserts or relies on
    nothing having changed."""
    with keys_twin(tmp_path_factory.mktemp("sandbox")) as t, pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNBOOKS_SANDBOX", str(t.root))
        yield t


def rotator(
    t: KeysTwin, archive: Path, keys: str, manual_revoked: str = "", verify_timeout: float = 6
) -> tuple[rk.KeyRotator, list[RotatingKey]]:
    env = t.inventory()
    selected = rk.parse_keys(env, keys)
    r = rk.KeyRotator(
        env,
        RenderProvider.from_environment(env),
        rk.build_issuers(env, selected),
        rk.RotationStore.for_environment("sandbox", archive),
        verify_timeout=verify_timeout,
        manual_revoked=rk.parse_manual_revoked(env, selected, manual_revoked),
        log=lambda _: None,
    )
    return r, selected


def supabase(t: KeysTwin) -> SupabaseKeys:
    return SupabaseKeys.from_environment(t.inventory())


def group_env(t: KeysTwin) -> dict[str, str]:
    return RenderProvider.from_environment(t.inventory()).env_group(GROUP).env


def service_fingerprints(t: KeysTwin, key: str) -> dict[str, str]:
    r = RenderProvider.from_environment(t.inventory())
    return {s.name: r.health(s)[1]["keys"].get(key) for s in r.services() if s.type != "cron_job"}


def assert_no_values(path: Path, values: list[str]) -> None:
    text = path.read_text()
    for v in values:
        assert v not in text


def test_parse_keys(reader_twin: KeysTwin) -> None:
    env = reader_twin.inventory()
    assert [k.name for k in rk.parse_keys(env, " SUPABASE_SECRET_KEY, OAUTH_CLIENT_SECRET,SUPABASE_SECRET_KEY")] == [
        "SUPABASE_SECRET_KEY",
        "OAUTH_CLIENT_SECRET",
    ]
    with pytest.raises(BadParameter, match=r"^keys \(value not shown\): 1 name\(s\) not rotating .*one of: SUPABASE_"):
        rk.parse_keys(env, "SUPABASE_SECRET_KEY,NOPE")
    with pytest.raises(BadParameter, match=r"SPECTRAL_GENERATION: code-coupled.*never rotated") as e:
        rk.parse_keys(env, "SPECTRAL_GENERATION")
    assert e.value.name == "keys" and "OAUTH_CLIENT_SECRET" in e.value.fix
    with pytest.raises(BadParameter, match="names no key"):
        rk.parse_keys(env, " , ")


def test_parse_manual_revoked(reader_twin: KeysTwin) -> None:
    env = reader_twin.inventory()
    both = rk.parse_keys(env, "SUPABASE_SECRET_KEY,OAUTH_CLIENT_SECRET")
    assert rk.parse_manual_revoked(env, both, " OAUTH_CLIENT_SECRET ") == {"OAUTH_CLIENT_SECRET"}
    assert rk.parse_manual_revoked(env, both, "") == set()
    needle = r"^manual_revoked \(value not shown\): 1 name\(s\) not a selected key.*one of: OAUTH"
    with pytest.raises(BadParameter, match=needle):
        rk.parse_manual_revoked(env, both, "SUPABASE_SECRET_KEY")
    with pytest.raises(BadParameter, match="leave it empty"):
        rk.parse_manual_revoked(env, rk.parse_keys(env, "SUPABASE_SECRET_KEY"), "OAUTH_CLIENT_SECRET")


def test_plan_changes_nothing(reader_twin: KeysTwin, tmp_path: Path) -> None:
    before_keys = [k.id for k in supabase(reader_twin).api_keys()]
    before_group = group_env(reader_twin)
    r, keys = rotator(reader_twin, tmp_path / "runs", "SUPABASE_SECRET_KEY,OAUTH_CLIENT_SECRET")
    plan = r.plan(keys)
    assert plan.safe, plan.preflight
    assert [row["state"] for row in plan.rows()] == ["fresh rotation", "fresh rotation"]
    assert [k.id for k in supabase(reader_twin).api_keys()] == before_keys
    assert group_env(reader_twin) == before_group
    assert not (tmp_path / "runs" / "state").exists()


def test_full_rotation(twin: KeysTwin, tmp_path: Path) -> None:
    sb = supabase(twin)
    old = group_env(twin)
    r, keys = rotator(twin, tmp_path / "runs", "SUPABASE_SECRET_KEY,OAUTH_CLIENT_SECRET")
    plan = r.plan(keys)
    rows = r.apply(plan, AUTH)
    new = group_env(twin)
    assert new["SUPABASE_SECRET_KEY"] != old["SUPABASE_SECRET_KEY"]
    assert new["OAUTH_CLIENT_SECRET"] == twin.secret("oauth_next_client_secret")
    for key in ("SUPABASE_SECRET_KEY", "OAUTH_CLIENT_SECRET"):
        assert set(service_fingerprints(twin, key).values()) == {fingerprint(new[key])}
    # the old secret key is deleted and refused; the new one works
    assert sb.project_accepts(old["SUPABASE_SECRET_KEY"]) == (False, 401)
    assert sb.project_accepts(new["SUPABASE_SECRET_KEY"]) == (True, 200)
    assert [k.type for k in sb.api_keys()].count("secret") == 1
    steps = {(x.target, x.step): x for x in rows}
    assert steps[("SUPABASE_SECRET_KEY", "verify_old_refused")].status == "done"
    # the OAuth secret's old value can only be revoked by hand: the rotation says so and does not claim completion
    awaiting = steps[("OAUTH_CLIENT_SECRET", "revoke_old")]
    assert awaiting.status == "awaiting manual revoke"
    assert "identity provider" in awaiting.detail and "manual_revoked=OAUTH_CLIENT_SECRET" in awaiting.detail
    assert ("OAUTH_CLIENT_SECRET", "verify_old_refused") not in steps
    assert plan.awaiting_manual_revoke == ["OAUTH_CLIENT_SECRET"]
    assert [row["status"] for row in plan.pending_rows()] == ["WARN"]
    state = json.loads(r.store.path.read_text())
    assert {k: v["status"] for k, v in state.items()} == {
        "SUPABASE_SECRET_KEY": "done",
        "OAUTH_CLIENT_SECRET": "awaiting_manual_revoke",
    }
    assert state["SUPABASE_SECRET_KEY"]["completed"] == list(rk.STEPS)
    assert state["OAUTH_CLIENT_SECRET"]["completed"] == list(rk.STEPS[: rk.STEPS.index("verify_services") + 1])
    assert state["SUPABASE_SECRET_KEY"]["new_fingerprint"] == fingerprint(new["SUPABASE_SECRET_KEY"])
    assert_no_values(r.store.path, [*old.values(), *new.values()])
    # the step details never hold a value either
    text = json.dumps([x.as_dict() for x in rows])
    assert not any(v in text for v in [*old.values(), *new.values()] if len(v) > 8)


@pytest.mark.parametrize("stop_after", ["issue", "write_group", "deploy", "revoke_old"])
def test_interrupted_rotation_resumes_with_exactly_one_new_key(
    twin: KeysTwin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_after: str
) -> None:
    sb = supabase(twin)
    old_value = group_env(twin)["SUPABASE_SECRET_KEY"]
    old_ids = {k.id for k in sb.api_keys()}
    r, keys = rotator(twin, tmp_path / "runs", "SUPABASE_SECRET_KEY")
    monkeypatch.setenv(rk.INTERRUPT_ENV, stop_after)
    with pytest.raises(rk.Interrupted):
        r.apply(r.plan(keys), AUTH)
    saved = rk.RotationStore.for_environment("sandbox", tmp_path / "runs").load()["SUPABASE_SECRET_KEY"]
    assert saved.status == "in_progress" and saved.completed == list(rk.STEPS[: rk.STEPS.index(stop_after) + 1])
    monkeypatch.delenv(rk.INTERRUPT_ENV)

    r2, keys2 = rotator(twin, tmp_path / "runs", "SUPABASE_SECRET_KEY")  # a new run
    plan = r2.plan(keys2)
    assert plan.safe, plan.preflight
    assert plan.rows()[0]["state"].startswith("resuming")
    rows = r2.apply(plan, AUTH)
    assert ("SUPABASE_SECRET_KEY", "issue", "already done") in [(x.target, x.step, x.status) for x in rows]
    new_ids = {k.id for k in sb.api_keys()} - old_ids
    assert len(new_ids) == 1, "exactly one new key was issued across both runs"
    new_value = group_env(twin)["SUPABASE_SECRET_KEY"]
    assert sb.find_api_key(new_value).id == new_ids.pop()
    assert sb.project_accepts(old_value)[0] is False
    assert set(service_fingerprints(twin, "SUPABASE_SECRET_KEY").values()) == {fingerprint(new_value)}
    assert rk.RotationStore.for_environment("sandbox", tmp_path / "runs").load()["SUPABASE_SECRET_KEY"].status == "done"
    assert_no_values(r2.store.path, [old_value, new_value])


def test_a_second_rotation_after_a_finished_one_starts_fresh(twin: KeysTwin, tmp_path: Path) -> None:
    r, keys = rotator(twin, tmp_path / "runs", "SUPABASE_PUBLISHABLE_KEY")
    r.apply(r.plan(keys), AUTH)
    first = group_env(twin)["SUPABASE_PUBLISHABLE_KEY"]
    r, keys = rotator(twin, tmp_path / "runs", "SUPABASE_PUBLISHABLE_KEY")
    plan = r.plan(keys)
    assert plan.rows()[0]["state"] == "fresh rotation"
    r.apply(plan, AUTH)
    assert group_env(twin)["SUPABASE_PUBLISHABLE_KEY"] != first
    assert [k.type for k in supabase(twin).api_keys()].count("publishable") == 1


def test_oauth_rotation_waits_for_the_manual_revoke_then_completes(twin: KeysTwin, tmp_path: Path) -> None:
    store = rk.RotationStore.for_environment("sandbox", tmp_path / "runs")
    # confirming a revoke before any service runs the new secret is refused, before any change
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET")
    with pytest.raises(BadParameter, match=r"^manual_revoked='OAUTH_CLIENT_SECRET': .*no rotation awaiting"):
        r.plan(keys)
    assert not store.path.exists()
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET")
    r.apply(r.plan(keys), AUTH)
    assert store.load()["OAUTH_CLIENT_SECRET"].status == rk.AWAITING_MANUAL_REVOKE
    # a re-run without the confirmation still waits, and says so again
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET")
    plan = r.plan(keys)
    assert plan.safe and plan.rows()[0]["state"].startswith("awaiting_manual_revoke")
    rows = r.apply(plan, AUTH)
    assert [(x.step, x.status) for x in rows if x.step == "revoke_old"] == [("revoke_old", "awaiting manual revoke")]
    assert store.load()["OAUTH_CLIENT_SECRET"].status == rk.AWAITING_MANUAL_REVOKE
    # on-call revoked it and confirms: the rotation completes, naming the confirmation
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET")
    plan = r.plan(keys)
    rows = r.apply(plan, AUTH)
    statuses = {x.step: x.status for x in rows}
    assert statuses["revoke_old"] == statuses["verify_old_refused"] == "confirmed by on-call"
    assert plan.awaiting_manual_revoke == [] and plan.pending_rows() == []
    saved = store.load()["OAUTH_CLIENT_SECRET"]
    assert saved.status == "done" and saved.completed == list(rk.STEPS)


def test_oauth_rotation_is_refused_when_the_source_holds_the_current_value(twin: KeysTwin, tmp_path: Path) -> None:
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET")
    r.apply(r.plan(keys), AUTH)
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET")
    r.apply(r.plan(keys), AUTH)  # confirm the manual revoke: that rotation is done
    r, keys = rotator(twin, tmp_path / "runs", "OAUTH_CLIENT_SECRET")
    plan = r.plan(keys)
    assert not plan.safe
    assert any("holds the value already in the group" in x.detail for x in plan.preflight)


def test_key_on_a_service_refuses_the_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with keys_twin(tmp_path / "sandbox", frozenset({"key-on-service"})) as t:
        monkeypatch.setenv("RUNBOOKS_SANDBOX", str(t.root))
        before = [k.id for k in supabase(t).api_keys()]
        r, keys = rotator(t, tmp_path / "runs", "SUPABASE_SECRET_KEY")
        plan = r.plan(keys)
        assert not plan.safe
        assert any("also set on service(s) api" in x.detail for x in plan.preflight)
        with pytest.raises(rk.RotationRefused, match=r"preflight failed: nothing was changed.*also set on service"):
            r.apply(plan, AUTH)
        assert [k.id for k in supabase(t).api_keys()] == before
        assert not r.store.path.exists()


def test_stale_service_stops_the_rotation_before_revoking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with keys_twin(tmp_path / "sandbox", frozenset({"stale-service"})) as t:
        monkeypatch.setenv("RUNBOOKS_SANDBOX", str(t.root))
        old_value = group_env(t)["SUPABASE_SECRET_KEY"]
        # the stale service never reports the new key: the rotation waits out its whole verification (3 s)
        r, keys = rotator(t, tmp_path / "runs", "SUPABASE_SECRET_KEY", verify_timeout=3)
        waited = r"ops:SUPABASE_SECRET_KEY reports .* after 3 s\. The old .*NOT revoked.*larger verify_timeout_seconds"
        with pytest.raises(rk.RotationFailed, match=waited):
            r.apply(r.plan(keys), AUTH)
        assert supabase(t).project_accepts(old_value) == (True, 200)  # the old key still works
        saved = r.store.load()["SUPABASE_SECRET_KEY"]
        assert saved.completed == ["preflight", "issue", "write_group", "deploy"]
        assert saved.last_error and "ops" in saved.last_error


def test_cloudflare_placeholder_token_fails_preflight(reader_twin: KeysTwin, tmp_path: Path) -> None:
    """Without an edge twin the group holds a placeholder Cloudflare does not know: preflight refuses it."""
    from runbooks.providers.base import ProviderError

    def verify(value: str) -> object:
        raise ProviderError("cloudflare", "verify token", "Invalid API Token", status=401)

    env = reader_twin.inventory()
    selected = rk.parse_keys(env, "CLOUDFLARE_API_TOKEN")
    r = rk.KeyRotator(
        env,
        RenderProvider.from_environment(env),
        rk.build_issuers(env, selected, cloudflare_admin=object(), cloudflare_verify=verify),
        rk.RotationStore.for_environment("sandbox", tmp_path / "runs"),
        log=lambda _: None,
    )
    plan = r.plan(selected)
    assert not plan.safe and any("Cloudflare does not accept" in x.detail for x in plan.preflight)


def test_failed_deploy_stops_before_revoking_and_resumes(twin: KeysTwin, tmp_path: Path) -> None:
    env = twin.inventory()

    class FailingDeploys(RenderProvider):
        def wait_deploy(self, service_id: str, deploy_id: str, **kw: object) -> object:
            d = super().wait_deploy(service_id, deploy_id, **kw)  # type: ignore[arg-type]
            from dataclasses import replace

            return replace(d, status="update_failed") if service_id == self.service("worker").id else d

    selected = rk.parse_keys(env, "SUPABASE_SECRET_KEY")
    store = rk.RotationStore.for_environment("sandbox", tmp_path / "runs")
    old_value = group_env(twin)["SUPABASE_SECRET_KEY"]
    render = FailingDeploys(env.endpoints.render_api, twin.secret("render_api_key"), env.render_owner_id)
    r = rk.KeyRotator(env, render, rk.build_issuers(env, selected), store, log=lambda _: None)
    with pytest.raises(rk.RotationFailed, match="deploys did not go live on worker"):
        r.apply(r.plan(selected), AUTH)
    assert store.load()["SUPABASE_SECRET_KEY"].completed == ["preflight", "issue", "write_group"]
    assert supabase(twin).project_accepts(old_value) == (True, 200)
    r2, keys = rotator(twin, tmp_path / "runs", "SUPABASE_SECRET_KEY")
    r2.apply(r2.plan(keys), AUTH)
    assert supabase(twin).project_accepts(old_value) == (False, 401)
    assert store.load()["SUPABASE_SECRET_KEY"].status == "done"


@pytest.mark.parametrize("seconds", [0, -5, 3601])
def test_a_wait_outside_one_second_to_an_hour_is_refused_naming_the_parameter(seconds: int) -> None:
    with pytest.raises(BadParameter, match=rf"^verify_timeout_seconds={seconds}: must be from 1 to 3600 seconds; give"):
        rk.parse_wait("verify_timeout_seconds", seconds)


@pytest.mark.parametrize("seconds", [1, 20, 3600])
def test_a_wait_from_one_second_to_an_hour_is_taken(seconds: int) -> None:
    assert rk.parse_wait("deploy_timeout_seconds", seconds) == float(seconds)
