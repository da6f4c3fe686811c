"""Render twin state without processes: seeding from the component's seed (and its faults), deploy
records, the Supabase URL refresh after a twin restart, and the API shapes parsed by Render's client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from render.public_api.models.deploy import Deploy
from render.public_api.models.env_group import EnvGroup
from render.public_api.models.service import Service

from runbooks.sandbox.component import ComponentState, SandboxContext
from runbooks.sandbox.components.render import _inventory, build_seed
from runbooks.sandbox.emulators.render.store import RenderStore, deploy_json, group_json, service_json


def seed(tmp_path: Path, faults: frozenset[str] = frozenset()) -> dict[str, Any]:
    ctx = SandboxContext(root=tmp_path, faults=faults)
    ctx.write_secret("supabase_secret_key", "sb_secret_seeded_0123456789")
    ctx.write_secret("supabase_publishable_key", "sb_publishable_seeded_012345")
    ctx.components["supabase"] = ComponentState("supabase", "http://127.0.0.1:1", [])
    inv = _inventory()
    return build_seed(ctx, inv, {s["name"]: 40000 + i for i, s in enumerate(inv["services"])})


def store(tmp_path: Path, faults: frozenset[str] = frozenset()) -> RenderStore:
    st = RenderStore(tmp_path / "state.json")
    st.seed(seed(tmp_path, faults))
    return st


def test_seed_lays_out_the_inventory(tmp_path: Path) -> None:
    st = store(tmp_path)
    [group] = st.data["env_groups"].values()
    assert group["envVars"]["SUPABASE_SECRET_KEY"] == "sb_secret_seeded_0123456789"
    assert "SPECTRAL_GENERATION" not in group["envVars"]
    assert len(group["serviceIds"]) == 4
    for sid, svc in st.data["services"].items():
        assert set(svc["env"]) == {"SPECTRAL_GENERATION", "HANDLER_CONCURRENCY", "DRAIN_TIMEOUT_SECONDS"}
        live = st.live_deploy(sid)
        assert live is not None
        if svc["build"] == "git":  # built from the repository: the deploy names its commit, the process gets it
            assert "image" not in live and live["commit"]["id"] == live["_env"]["RENDER_GIT_COMMIT"]
        else:
            assert live["image"]["ref"].endswith(":" + svc["env"]["SPECTRAL_GENERATION"])
        assert st.merged_env(sid)["SUPABASE_SECRET_KEY"] == "sb_secret_seeded_0123456789"
    assert sorted(s["name"] for s in st.data["services"].values() if s["build"] == "git") == ["ops"]
    assert len(st.data["cron_jobs"]) == 6  # the inventory's cron jobs, as Render cron jobs


@pytest.mark.parametrize(
    ("fault", "service", "check"),
    [
        ("key-on-service", "api", lambda st, svc, grp: "SUPABASE_SECRET_KEY" in svc["env"]),
        ("generation-in-group", None, lambda st, svc, grp: "SPECTRAL_GENERATION" in grp["envVars"]),
        (
            "generation-mismatch",
            "worker",
            lambda st, svc, grp: (
                not st.live_deploy(svc["id"])["image"]["ref"].endswith(svc["env"]["SPECTRAL_GENERATION"])
            ),
        ),
        ("stale-service", "ops", lambda st, svc, grp: svc["ignores_deploys"] is True),
    ],
)
def test_each_fault_shapes_the_seed(tmp_path: Path, fault: str, service: str | None, check: Any) -> None:
    clean, faulted = store(tmp_path / "a"), store(tmp_path / "b", frozenset({fault}))
    for st, expected in ((clean, False), (faulted, True)):
        [grp] = st.data["env_groups"].values()
        svc = st.service_by_name(service or "app")
        assert bool(check(st, svc, grp)) is expected


def test_deploy_records_and_statuses(tmp_path: Path) -> None:
    st = store(tmp_path)
    sid = st.service_by_name("app")["id"]
    old = st.live_deploy(sid)
    rec = st.new_deploy(sid)
    assert rec["status"] == "created" and rec["finishedAt"] is None
    st.set_deploy_status(sid, rec["id"], "live")
    assert st.live_deploy(sid)["id"] == rec["id"]
    assert next(d for d in st.deploys(sid) if d["id"] == old["id"])["status"] == "deactivated"
    assert "_env" not in deploy_json(rec)


def test_supabase_url_follows_the_twin(tmp_path: Path) -> None:
    st = store(tmp_path)
    st.refresh_supabase_url("http://127.0.0.1:2")
    [group] = st.data["env_groups"].values()
    assert group["envVars"]["SUPABASE_URL"] == "http://127.0.0.1:2"
    for sid in st.data["services"]:
        assert st.live_deploy(sid)["_env"]["SUPABASE_URL"] == "http://127.0.0.1:2"
    # persisted
    assert RenderStore(tmp_path / "state.json").merged_env(sid)["SUPABASE_URL"] == "http://127.0.0.1:2"


def test_shapes_parse_with_renders_generated_models(tmp_path: Path) -> None:
    st = store(tmp_path)
    for svc in st.data["services"].values():
        parsed = Service.from_dict(service_json(svc, "tea-x", "http://h", "127.0.0.1"))
        assert parsed.name == svc["name"] and parsed.service_details.additional_properties.get("url", True)
        Deploy.from_dict(deploy_json(st.live_deploy(svc["id"])))
    [group] = st.data["env_groups"].values()
    g = EnvGroup.from_dict(group_json(group, "tea-x", st.data["services"]))
    assert {v.key for v in g.env_vars} >= {"SUPABASE_SECRET_KEY", "SUPABASE_URL"}
