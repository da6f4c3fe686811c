"""The Render twin's state: env groups, services, deploys and metric profiles, persisted as JSON.

The seed (``<root>/render/seed.json``, written by the render component) describes the workspace to
create on first start. API shapes (``*_json``) follow Render's public API as parsed by the generated
client in ``render.public_api``.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbooks.sandbox.emulators.common import JsonState

SEED_FILE = "seed.json"
#: facts of the running twin the render component refreshes at every start (the twins' URLs)
RUNTIME_FILE = "runtime.json"
SUPABASE_URL = "SUPABASE_URL"
CLOUDFLARE_API_URL = "CLOUDFLARE_API_URL"
#: runtime.json field -> the env var it refreshes
RUNTIME_URLS = {"supabase_url": SUPABASE_URL, "cloudflare_api_url": CLOUDFLARE_API_URL}
IMAGE_REPO = "registry.runspectral.com/spectral"
GENERATION = "SPECTRAL_GENERATION"


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "-" + "".join(secrets.choice(alphabet) for _ in range(20))


def image_ref(env: dict[str, str]) -> str:
    return f"{IMAGE_REPO}:{env.get(GENERATION, 'unknown')}"


#: the variable Render sets in a git-built service's runtime: the commit its deploy built
GIT_COMMIT = "RENDER_GIT_COMMIT"
REPO = "https://github.com/runspectral/spectral"


def commit_of(env: dict[str, str]) -> str:
    """The twin's commit for a generation (stable: the same generation is always the same commit)."""
    return hashlib.sha1(f"spectral@{env.get(GENERATION, 'unknown')}".encode()).hexdigest()


class RenderStore:
    """All mutations go through JsonState.update(); readers get copies of plain dicts."""

    def __init__(self, path: Path):
        self.state = JsonState(path, {"env_groups": {}, "services": {}, "deploys": {}, "metrics": {}, "cron_jobs": {}})

    @property
    def data(self) -> dict[str, Any]:
        return self.state.data

    @property
    def seeded(self) -> bool:
        return bool(self.data.get("owner_id"))

    # -- seed ------------------------------------------------------------------------------
    def seed(self, seed: dict[str, Any]) -> None:
        """Create the workspace described by the seed: groups, services and each service's first deploy."""
        with self.state.update() as d:
            d["owner_id"] = seed["owner_id"]
            d["key_names"] = list(seed.get("key_names", []))
            d["heartbeat"] = dict(seed.get("heartbeat", {}))
            d["cron_jobs"] = {}
            for c in seed.get("cron_jobs", []):
                cid = new_id("crn")
                d["cron_jobs"][cid] = {"id": cid, "createdAt": now(), "updatedAt": now(), **c}
            group_ids: dict[str, str] = {}
            for g in seed["env_groups"]:
                gid = new_id("evg")
                group_ids[g["name"]] = gid
                d["env_groups"][gid] = {
                    "id": gid,
                    "name": g["name"],
                    "createdAt": now(),
                    "updatedAt": now(),
                    "envVars": dict(g["env"]),
                    "serviceIds": [],
                }
            for s in seed["services"]:
                sid = new_id("srv")
                d["services"][sid] = {
                    "id": sid,
                    "name": s["name"],
                    "kind": s["kind"],
                    "port": int(s["port"]),
                    "memory_limit_mb": int(s["memory_limit_mb"]),
                    "createdAt": now(),
                    "updatedAt": now(),
                    "env": dict(s["env"]),
                    "ignores_deploys": bool(s.get("ignores_deploys", False)),
                    "build": s.get("build", "image"),
                    "plan": s.get("plan", "standard"),
                    "region": s.get("region", "oregon"),
                    "instances": int(s.get("instances", 1)),
                }
                if s.get("env_group") in group_ids:
                    d["env_groups"][group_ids[s["env_group"]]]["serviceIds"].append(sid)
                d["metrics"][sid] = dict(s.get("metrics", {}))
                deployed = {**self._merged_env(d, sid), **s.get("deployed_env_overrides", {})}
                d["deploys"][sid] = [
                    self._deploy_record(deployed, status="live", trigger="api", build=d["services"][sid]["build"])
                ]

    # -- reads -----------------------------------------------------------------------------
    def service(self, sid: str) -> dict[str, Any] | None:
        return self.data["services"].get(sid)

    def service_by_name(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.data["services"].values() if s["name"] == name), None)

    def group(self, gid: str) -> dict[str, Any] | None:
        return self.data["env_groups"].get(gid)

    def groups_of(self, sid: str) -> list[dict[str, Any]]:
        return [g for g in self.data["env_groups"].values() if sid in g["serviceIds"]]

    def merged_env(self, sid: str) -> dict[str, str]:
        """What a service starts with: its groups' env vars, overridden by its own env vars."""
        return self._merged_env(self.data, sid)

    @staticmethod
    def _merged_env(d: dict[str, Any], sid: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for g in d["env_groups"].values():
            if sid in g["serviceIds"]:
                env.update(g["envVars"])
        env.update(d["services"][sid]["env"])
        return env

    def deploys(self, sid: str) -> list[dict[str, Any]]:
        return list(self.data["deploys"].get(sid, []))

    def live_deploy(self, sid: str) -> dict[str, Any] | None:
        return next((x for x in self.data["deploys"].get(sid, []) if x["status"] == "live"), None)

    # -- writes ----------------------------------------------------------------------------
    @staticmethod
    def _deploy_record(env: dict[str, str], *, status: str, trigger: str, build: str = "image") -> dict[str, Any]:
        """A deploy: an image-built service's names its image (the tag is the generation); a git-built
        service's names the commit it built, which Render also gives the process as RENDER_GIT_COMMIT."""
        t = now()
        if build == "git":
            commit = commit_of(env)
            return {
                "id": new_id("dep"),
                "status": status,
                "trigger": trigger,
                "createdAt": t,
                "updatedAt": t,
                "startedAt": t,
                "finishedAt": t if status == "live" else None,
                "commit": {"id": commit, "message": f"release {env.get(GENERATION, 'unknown')}", "createdAt": t},
                "_env": {**env, GIT_COMMIT: commit},
            }
        return {
            "id": new_id("dep"),
            "status": status,
            "trigger": trigger,
            "createdAt": t,
            "updatedAt": t,
            "startedAt": t,
            "finishedAt": t if status == "live" else None,
            "image": {"ref": image_ref(env), "sha": "sha256:" + secrets.token_hex(32)},
            # twin-internal: the env the service process was (or will be) started with
            "_env": env,
        }

    def new_deploy(self, sid: str, *, trigger: str = "api", image_url: str | None = None) -> dict[str, Any]:
        with self.state.update() as d:
            env = self._merged_env(d, sid)
            rec = self._deploy_record(env, status="created", trigger=trigger, build=d["services"][sid].get("build", ""))
            rec["finishedAt"] = None
            if image_url and "image" in rec:
                rec["image"]["ref"] = image_url
            d["deploys"].setdefault(sid, []).insert(0, rec)
            return dict(rec)

    def set_deploy_status(self, sid: str, deploy_id: str, status: str) -> None:
        with self.state.update() as d:
            for rec in d["deploys"].get(sid, []):
                if rec["id"] == deploy_id:
                    rec["status"], rec["updatedAt"] = status, now()
                    if status in ("live", "update_failed", "build_failed", "canceled"):
                        rec["finishedAt"] = now()
                elif status == "live" and rec["status"] == "live":
                    rec["status"], rec["updatedAt"] = "deactivated", now()

    def set_group_var(self, gid: str, key: str, value: str) -> None:
        with self.state.update() as d:
            g = d["env_groups"][gid]
            g["envVars"][key], g["updatedAt"] = value, now()

    def delete_group_var(self, gid: str, key: str) -> bool:
        with self.state.update() as d:
            g = d["env_groups"][gid]
            found = g["envVars"].pop(key, None) is not None
            g["updatedAt"] = now()
            return found

    def set_service_var(self, sid: str, key: str, value: str) -> None:
        with self.state.update() as d:
            s = d["services"][sid]
            s["env"][key], s["updatedAt"] = value, now()

    def replace_service_vars(self, sid: str, env: dict[str, str]) -> None:
        with self.state.update() as d:
            s = d["services"][sid]
            s["env"], s["updatedAt"] = dict(env), now()

    def delete_service_var(self, sid: str, key: str) -> bool:
        with self.state.update() as d:
            s = d["services"][sid]
            s["updatedAt"] = now()
            return s["env"].pop(key, None) is not None

    def link(self, gid: str, sid: str, linked: bool) -> None:
        with self.state.update() as d:
            ids = d["env_groups"][gid]["serviceIds"]
            if linked and sid not in ids:
                ids.append(sid)
            if not linked and sid in ids:
                ids.remove(sid)

    def refresh_supabase_url(self, url: str) -> None:
        """Point the workspace at the Supabase twin's current address (see :meth:`refresh_platform_urls`)."""
        self.refresh_platform_urls({SUPABASE_URL: url})

    def refresh_platform_urls(self, urls: dict[str, str]) -> None:
        """Point the workspace at the twins' current addresses (groups and the running deploys).

        ``SUPABASE_URL`` and ``CLOUDFLARE_API_URL`` are the platform's connections to the twins, not
        configuration under test: when a twin restarts on another port, running services follow it."""
        with self.state.update() as d:
            for name, url in urls.items():
                for g in d["env_groups"].values():
                    if name in g["envVars"]:
                        g["envVars"][name] = url
                for recs in d["deploys"].values():
                    for rec in recs:
                        if name in rec.get("_env", {}):
                            rec["_env"][name] = url

    def set_metrics(self, sid: str, profile: dict[str, Any]) -> None:
        with self.state.update() as d:
            d["metrics"].setdefault(sid, {}).update(profile)


# -- API shapes ----------------------------------------------------------------------------------
def service_json(s: dict[str, Any], owner_id: str, base_host: str, service_host: str) -> dict[str, Any]:
    """A service as Render describes it. The twin's web services are reachable on loopback: ``url`` is that
    address (Render's would be ``https://<slug>.onrender.com``). A background worker has no URL, as on
    Render: it reports its health in its log (docs/SERVICE_CONTRACT.md)."""
    details: dict[str, Any] = {
        "env": "python",
        "runtime": "python",
        "plan": s.get("plan", "standard"),
        "region": s.get("region", "oregon"),
        "numInstances": s.get("instances", 1),
        "buildPlan": "starter",
        "envSpecificDetails": {"buildCommand": "pip install .", "startCommand": f"spectral-{s['name']}"},
    }
    kind = "web_service" if s["kind"] == "web" else "background_worker"
    if s["kind"] == "web":
        details.update({"healthCheckPath": "/healthz", "url": f"http://{service_host}:{s['port']}"})
        details["openPorts"] = [{"port": s["port"], "protocol": "TCP"}]
    out = {
        "id": s["id"],
        "name": s["name"],
        "slug": f"spectral-{s['name']}",
        "type": kind,
        "ownerId": owner_id,
        "autoDeploy": "no",
        "notifyOnFail": "default",
        "rootDir": "",
        "suspended": "not_suspended",
        "suspenders": [],
        "createdAt": s["createdAt"],
        "updatedAt": s["updatedAt"],
        "dashboardUrl": f"{base_host}/dashboard/{s['id']}",
        "serviceDetails": details,
    }
    if s.get("build", "image") == "git":
        out.update({"repo": REPO, "branch": "main"})
    else:
        out["imagePath"] = IMAGE_REPO
    return out


def cron_job_json(c: dict[str, Any], owner_id: str, base_host: str) -> dict[str, Any]:
    """A cron job as Render describes it (a service of type ``cron_job``; it has no process between runs)."""
    return {
        "id": c["id"],
        "name": c["name"],
        "slug": c["name"],
        "type": "cron_job",
        "ownerId": owner_id,
        "autoDeploy": "no",
        "notifyOnFail": "default",
        "rootDir": "",
        "suspended": "not_suspended",
        "suspenders": [],
        "createdAt": c["createdAt"],
        "updatedAt": c["updatedAt"],
        "dashboardUrl": f"{base_host}/dashboard/{c['id']}",
        "repo": REPO,
        "branch": "main",
        "serviceDetails": {
            "env": "python",
            "runtime": "python",
            "plan": c.get("plan", "starter"),
            "region": c.get("region", "oregon"),
            "schedule": c["schedule"],
            "buildPlan": "starter",
            "envSpecificDetails": {"buildCommand": "pip install .", "startCommand": c["command"]},
        },
    }


def group_meta_json(g: dict[str, Any], owner_id: str, services: dict[str, Any]) -> dict[str, Any]:
    links = [
        {"id": sid, "name": services[sid]["name"], "type": "web" if services[sid]["kind"] == "web" else "worker"}
        for sid in g["serviceIds"]
        if sid in services
    ]
    return {
        "id": g["id"],
        "name": g["name"],
        "ownerId": owner_id,
        "createdAt": g["createdAt"],
        "updatedAt": g["updatedAt"],
        "serviceLinks": links,
    }


def group_json(g: dict[str, Any], owner_id: str, services: dict[str, Any]) -> dict[str, Any]:
    out = group_meta_json(g, owner_id, services)
    out["envVars"] = [{"key": k, "value": v} for k, v in g["envVars"].items()]
    out["secretFiles"] = []
    return out


def deploy_json(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if not k.startswith("_") and v is not None}
    return out
