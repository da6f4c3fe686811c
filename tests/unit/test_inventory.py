import json

import pytest
import yaml

from runbooks import inventory
from runbooks.inventory import InventoryError, Posture


@pytest.mark.parametrize("name", ["production", "staging"])
def test_inventories_load_with_hosting_facts(name):
    env = inventory.load(name)
    postures = {h.label: h.posture for h in env.hostnames}
    assert postures == {
        "app": Posture.PROXIED,
        "ops": Posture.PROXIED,
        "api": Posture.DNS_ONLY,
        "docs": Posture.PROXIED,
        "codex": Posture.PROXIED,
    }
    assert env.hostname("codex").pages_function
    assert env.backup_bucket.versioning and env.backup_bucket.object_lock
    assert env.backup_bucket.name not in {b.name for b in env.app_buckets}
    assert "SPECTRAL_GENERATION" in env.config.code_coupled
    assert {s.name for s in env.services} == {"app", "api", "ops", "worker"}
    assert env.split_triggers.worker_memory_fraction == 0.70
    assert {a.id for a in env.adrs} >= {"ADR-040", "ADR-046"}


def test_production_cookie_domain_is_registrable_domain():
    assert inventory.load("production").cookie_domain == "runspectral.com"


def test_sandbox_needs_running_twin(tmp_path):
    with pytest.raises(InventoryError, match="sandbox up"):
        inventory.load("sandbox", sandbox=tmp_path)


def test_sandbox_overlays_twin_endpoints(tmp_path):
    (tmp_path / "endpoints.json").write_text(
        json.dumps(
            {
                "inventory_overlay": {
                    "supabase_project_ref": "twinref",
                    "endpoints": {"supabase_project": "http://127.0.0.1:9", "s3": "http://x"},
                }
            }
        )
    )
    env = inventory.load("sandbox", sandbox=tmp_path)
    assert env.supabase_project_ref == "twinref" and env.endpoints.s3 == "http://x"
    assert env.credentials.database_url.startswith("sandbox:")


def _write(tmp_path, mutate):
    raw = yaml.safe_load((inventory.loader.inventory_dir() / "production.yaml").read_text())
    mutate(raw)
    (tmp_path / "production.yaml").write_text(yaml.safe_dump(raw))


@pytest.mark.parametrize(
    "mutate, field, problem",
    [
        (lambda r: r["hostnames"][2].update(posture="half"), "hostnames.2.posture", "proxied"),
        (
            lambda r: r["credentials"].update(render_api_key="rnd_literal"),
            "credentials.render_api_key",
            "not a secret reference",
        ),
        (lambda r: r["services"][0].update(env_group="nope"), "(top level)", "not declared"),
        (lambda r: r["cron_jobs"][0].update(schedule="every night"), "cron_jobs.0.schedule", "cron"),
        (lambda r: r.pop("zone"), "zone", "Field required"),
        (lambda r: r["env_groups"][0]["keys"].append("SPECTRAL_GENERATION"), "(top level)", "not rotating keys"),
    ],
)
def test_malformed_inventory_names_file_field_problem(tmp_path, mutate, field, problem):
    _write(tmp_path, mutate)
    with pytest.raises(InventoryError) as e:
        inventory.load("production", directory=tmp_path)
    msg = str(e.value)
    assert "production.yaml" in msg and field in msg and problem in msg


def test_unknown_environment_is_refused():
    with pytest.raises(InventoryError, match="one of production, staging, sandbox"):
        inventory.load("prod")
