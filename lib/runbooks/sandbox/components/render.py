"""The render component: the Render API twin and the four twin services it runs (app, api, ops, worker).

Start-up seeds the workspace from the sandbox inventory: one env group holding the rotating keys (the
Supabase keys come from the Supabase twin, which creates them; the runtime Cloudflare token from the edge
twin, which is why render depends on edge) and the twins' URLs (``SUPABASE_URL``, ``CLOUDFLARE_API_URL``);
the services linked to it with their code-coupled values; and a first live deploy of each. Faults shape that seed.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import yaml

from runbooks.paths import inventory_dir
from runbooks.sandbox.component import (
    Catcher,
    Component,
    ComponentState,
    FaultDeclaration,
    FaultSpec,
    SandboxContext,
    dump_json,
    free_port,
    platform_fault,
)
from runbooks.sandbox.emulators.render.store import RUNTIME_FILE, SEED_FILE

#: secrets this component writes
API_KEY = "render_api_key"
OAUTH_NEXT = "oauth_next_client_secret"
#: twin credentials the Supabase twin writes (see emulators/supabase/models.py)
SUPABASE_BOOTSTRAP = {
    "SUPABASE_SECRET_KEY": "supabase_secret_key",
    "SUPABASE_PUBLISHABLE_KEY": "supabase_publishable_key",
}
#: a Cloudflare token for the runtime, if the edge twin writes one (see docs/KEYS.md)
CLOUDFLARE_RUNTIME = "cloudflare_runtime_token"
GENERATION = "SPECTRAL_GENERATION"
#: the image generation the twin's services run
CURRENT_GENERATION = "2026.11.3"
PREVIOUS_GENERATION = "2026.11.2"
#: which service each fault is applied to
KEY_ON_SERVICE = ("api", "SUPABASE_SECRET_KEY")
MISMATCH_SERVICE = "worker"
STALE_SERVICE = "ops"
#: the twin builds these services from the repository (their deploys name a commit, not an image), so that
#: both of Render's deploy shapes are exercised by the generation check
GIT_BUILT = ("ops",)
#: platform-posture faults: the service deployed in another region, the cron job that is absent
REGION_MISMATCH = ("api", "frankfurt")
MISSING_CRON_JOB = "verify-backup-posture"
PLAN_DRIFT = ("worker", "standard")


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def _inventory() -> dict[str, Any]:
    """The sandbox inventory as raw data (the overlay is not needed: names, groups and services only)."""
    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text())
    return data if isinstance(data, dict) else {}


def _supabase_url(ctx: SandboxContext) -> str:
    url = ctx.overlay.get("endpoints", {}).get("supabase_project")
    if url:
        return str(url)
    if "supabase" in ctx.components:
        return ctx.components["supabase"].address
    raise RuntimeError("the render component needs the supabase component (its project URL)")


def _cloudflare_api(ctx: SandboxContext) -> str | None:
    """The Cloudflare API twin's base URL (the edge component), or None without an edge."""
    url = ctx.overlay.get("endpoints", {}).get("cloudflare_api")
    if url:
        return str(url)
    return ctx.components["edge"].address if "edge" in ctx.components else None


def _key_value(ctx: SandboxContext, name: str) -> str:
    if name in SUPABASE_BOOTSTRAP:
        try:
            return ctx.read_secret(SUPABASE_BOOTSTRAP[name])
        except FileNotFoundError:
            raise RuntimeError(
                f"the Supabase twin has not written {SUPABASE_BOOTSTRAP[name]}; has it started?"
            ) from None
    if name == "CLOUDFLARE_API_TOKEN":
        # the runtime's own Cloudflare token (never the runbooks' admin token), seeded by the edge twin (render
        # depends on edge, so it exists); a placeholder Cloudflare does not know only when no edge runs (the
        # unit harnesses)
        try:
            return ctx.read_secret(CLOUDFLARE_RUNTIME)
        except FileNotFoundError:
            return _token("cfrt_")
    return _token("oauth_")


def _cron_jobs(ctx: SandboxContext, inv: dict[str, Any]) -> list[dict[str, Any]]:
    """The inventory's cron jobs as Render cron jobs: schedule, the runbook command, plan and region."""
    platform = inv.get("platform", {})
    command = platform.get("cron_command", "runbooks run {procedure} --env {environment} --trigger schedule")
    out = []
    for c in inv.get("cron_jobs", []):
        if ctx.fault("cron-job-missing") and c["name"] == MISSING_CRON_JOB:
            continue
        posture = platform.get("render", {}).get(c["name"], {})
        out.append(
            {
                "name": c["name"],
                "schedule": c["schedule"],
                "command": command.format(procedure=c["procedure"], environment=inv["environment"]),
                "plan": posture.get("plan", "starter"),
                "region": inv.get("region", "oregon"),
            }
        )
    return out


def _placement(ctx: SandboxContext, inv: dict[str, Any], name: str) -> dict[str, Any]:
    """Plan, region, instance count and build of a service: the inventory's, unless a fault changes them."""
    posture = inv.get("platform", {}).get("render", {}).get(name, {})
    out = {
        "plan": posture.get("plan", "standard"),
        "instances": posture.get("instances", 1),
        "region": inv.get("region", "oregon"),
        "build": "git" if name in GIT_BUILT else "image",
    }
    if ctx.fault("render-region-mismatch") and name == REGION_MISMATCH[0]:
        out["region"] = REGION_MISMATCH[1]
    if ctx.fault("render-plan-drift") and name == PLAN_DRIFT[0]:
        out["plan"] = PLAN_DRIFT[1]
    return out


def build_seed(ctx: SandboxContext, inv: dict[str, Any], ports: dict[str, int]) -> dict[str, Any]:
    rotating = [k["name"] for k in inv["config"]["rotating_keys"]]
    groups = []
    for g in inv["env_groups"]:
        env = {name: _key_value(ctx, name) for name in g["keys"]}
        env["SUPABASE_URL"] = _supabase_url(ctx)
        if (cf := _cloudflare_api(ctx)) is not None:
            env["CLOUDFLARE_API_URL"] = cf
        if ctx.fault("generation-in-group"):
            env[GENERATION] = CURRENT_GENERATION
        groups.append({"name": g["name"], "env": env})
    services = []
    for s in inv["services"]:
        env = {GENERATION: CURRENT_GENERATION, **{k: str(v) for k, v in s.get("code_coupled", {}).items()}}
        svc: dict[str, Any] = {
            "name": s["name"],
            "kind": s["kind"],
            "env_group": s["env_group"],
            "memory_limit_mb": s["memory_limit_mb"],
            "port": ports[s["name"]],
            "env": env,
            **_placement(ctx, inv, s["name"]),
        }
        if ctx.fault("key-on-service") and s["name"] == KEY_ON_SERVICE[0]:
            # a copy of the group's key pinned on the service: it would survive a rotation of the group
            group = next(g for g in groups if g["name"] == s["env_group"])
            env[KEY_ON_SERVICE[1]] = group["env"][KEY_ON_SERVICE[1]]
        if ctx.fault("generation-mismatch") and s["name"] == MISMATCH_SERVICE:
            # the variable was changed after the running deploy: the deploy still runs the previous image
            svc["deployed_env_overrides"] = {GENERATION: PREVIOUS_GENERATION}
        if ctx.fault("stale-service") and s["name"] == STALE_SERVICE:
            svc["ignores_deploys"] = True
        services.append(svc)
    probes = inv.get("probes", {})
    if ctx.fault("env-group-unlinked"):
        services[-1]["env_group"] = None  # the last service (worker) is not linked to the group
    return {
        "owner_id": "tea-" + secrets.token_hex(10),
        "key_names": rotating,
        "env_groups": groups,
        "services": services,
        "cron_jobs": _cron_jobs(ctx, inv),
        "heartbeat": {
            "seconds": probes.get("heartbeat_seconds", 1),
            "marker": probes.get("heartbeat_marker", "spectral-health "),
        },
    }


AUDIT = "audit-config-placement"
#: rotate-keys as the operator applies it on the twin
APPLY = {"apply": "true", "confirm": "sandbox"}


class RenderComponent(Component):
    name = "render"
    #: edge first: the group gets the runtime Cloudflare token the edge twin seeds, and its API URL
    depends_on = ("supabase", "edge")
    faults: ClassVar[Mapping[str, FaultDeclaration]] = {
        "key-on-service": FaultSpec(
            "the api service carries its own SUPABASE_SECRET_KEY (a rotating key on a service)",
            (
                Catcher(AUDIT, checks=("config.service_has_no_rotating_key@api:SUPABASE_SECRET_KEY",)),
                Catcher("rotate-keys", checks=("preflight",), params=APPLY),
            ),
        ),
        "generation-in-group": FaultSpec(
            "SPECTRAL_GENERATION is set in the shared env group",
            (Catcher(AUDIT, checks=("config.group_has_no_code_coupled",)),),
        ),
        "generation-mismatch": FaultSpec(
            "the worker's SPECTRAL_GENERATION differs from the image its running deploy runs",
            (Catcher(AUDIT, checks=("config.generation_matches_deploy@worker",)),),
        ),
        "stale-service": FaultSpec(
            "the ops service ignores deploys (keeps running its old process and env)",
            (
                # the rotation stops before revoking; then the audit sees ops running the old keys
                # (its own short verification wait: the stale service never reports, so the run waits it out)
                Catcher("rotate-keys", checks=("verify_services",), params={**APPLY, "verify_timeout_seconds": "5"}),
                Catcher(AUDIT, checks=("config.service_runs_current_keys@ops",)),
            ),
            own_twin=True,  # any fault failing rotate-keys' preflight would hide it
        ),
        "render-region-mismatch": platform_fault(
            "the api service runs in frankfurt, not in the database's region", "render.region@api"
        ),
        "render-plan-drift": platform_fault(
            "the worker runs on the standard plan, not the inventory's", "render.service@worker"
        ),
        "cron-job-missing": platform_fault(
            "the verify-backup-posture cron job does not exist", "render.cron_job@verify-backup-posture"
        ),
        "env-group-unlinked": platform_fault(
            "the worker is not linked to the shared env group", "render.env_group_links@spectral-sandbox-keys"
        ),
    }

    def start(self, ctx: SandboxContext) -> ComponentState:
        state_dir = ctx.dir("render")
        ctx.write_secret(API_KEY, _token("rnd_"))
        if not (ctx.secrets_dir / OAUTH_NEXT).is_file():
            ctx.write_secret(OAUTH_NEXT, _token("oauth_"))
        seed_path = state_dir / SEED_FILE
        if not (state_dir / "state.json").is_file():
            inv = _inventory()
            ports = {s["name"]: free_port(ctx.host) for s in inv["services"]}
            dump_json(seed_path, build_seed(ctx, inv, ports))
            seed_path.chmod(0o600)
        # where the Supabase twin answers now (it may have moved since the workspace was seeded)
        dump_json(
            state_dir / RUNTIME_FILE, {"supabase_url": _supabase_url(ctx), "cloudflare_api_url": _cloudflare_api(ctx)}
        )
        pid, address = ctx.spawn_emulator("render", "runbooks.sandbox.emulators.render", self.faults)
        ctx.merge_overlay({"endpoints": {"render_api": f"{address}/v1"}})
        return ComponentState(self.name, address, [pid], {"api": f"{address}/v1"})

    def _services(self, ctx: SandboxContext, state: ComponentState) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{state.address}/__twin/services",
            timeout=3.0,
            headers={"Authorization": f"Bearer {ctx.read_secret(API_KEY)}"},
        )
        r.raise_for_status()
        return list(r.json())

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        try:
            services = self._services(ctx, state)
            # any answer (200, or 503 when a key is refused) means the process is up; a worker has no URL
            # (it logs its health): its process runs
            unhealthy = [
                s["name"]
                for s in services
                if (httpx.get(s["health_url"], timeout=3.0).status_code != 200 if s["health_url"] else not s["pid"])
            ]
        except (httpx.HTTPError, OSError, ValueError) as e:
            return False, f"not ready: {type(e).__name__}"
        detail = f"{len(services)} services running"
        return True, detail + (f" ({', '.join(unhealthy)} unhealthy)" if unhealthy else "")

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        seed_path: Path = ctx.root / "render" / SEED_FILE
        import json

        owner = json.loads(seed_path.read_text())["owner_id"]
        ctx.merge_overlay({"render_owner_id": owner, "vendor_ids": {"render_services": self._ids(ctx, state)}})
        state.extra["services"] = {s["name"]: s["health_url"] for s in self._services(ctx, state)}

    def _ids(self, ctx: SandboxContext, state: ComponentState) -> dict[str, str]:
        """Render's id of every service and cron job (the inventory's ``vendor_ids.render_services``)."""
        r = httpx.get(
            f"{state.address}/v1/services",
            params={"limit": 100},
            timeout=3.0,
            headers={"Authorization": f"Bearer {ctx.read_secret(API_KEY)}"},
        )
        r.raise_for_status()
        return {x["service"]["name"]: x["service"]["id"] for x in r.json()}


COMPONENT = RenderComponent
