"""The Render twin's HTTP API (base path ``/v1``), shaped like Render's public API.

Auth: ``Authorization: Bearer <render_api_key>`` (the sandbox secret ``render_api_key``). Errors answer
``{"id": ..., "message": ...}`` like Render. ``/__twin/...`` routes are the twin's own controls (metric
profiles, service ports), not part of Render's API.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from runbooks.sandbox.emulators.common import EmulatorArgs
from runbooks.sandbox.emulators.render import logs, metrics
from runbooks.sandbox.emulators.render.deploys import deploy_async, start_live
from runbooks.sandbox.emulators.render.store import (
    RUNTIME_FILE,
    RUNTIME_URLS,
    SEED_FILE,
    RenderStore,
    cron_job_json,
    deploy_json,
    group_json,
    group_meta_json,
    service_json,
)
from runbooks.sandbox.emulators.render.supervisor import Supervisor

API_KEY_SECRET = "render_api_key"


def create_app(args: EmulatorArgs, *, start_services: bool = True) -> FastAPI:
    store = RenderStore(args.state_dir / "state.json")
    if not store.seeded:
        seed_path = args.state_dir / SEED_FILE
        if not seed_path.is_file():
            raise SystemExit(f"render twin: no state and no seed file {seed_path}")
        store.seed(json.loads(seed_path.read_text()))
    runtime = args.state_dir / RUNTIME_FILE
    if runtime.is_file():
        current = json.loads(runtime.read_text())
        store.refresh_platform_urls({var: current[f] for f, var in RUNTIME_URLS.items() if current.get(f)})
    supervisor = Supervisor(args.root / "logs", host=args.host)
    if start_services:
        start_live(store, supervisor)

    app = FastAPI(title="Render twin", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store, app.state.supervisor = store, supervisor
    base_host = f"http://{args.host}:{args.port}"

    @app.exception_handler(HTTPException)
    async def _error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"id": str(exc.status_code), "message": str(exc.detail)}, status_code=exc.status_code)

    def authorize(request: Request) -> None:
        expected = (args.root / "secrets" / API_KEY_SECRET).read_text().strip()
        got = request.headers.get("authorization", "")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip(), expected)):
            raise HTTPException(401, "unauthorized")

    def owner() -> str:
        return str(store.data["owner_id"])

    def service_or_404(sid: str) -> dict[str, Any]:
        svc = store.service(sid)
        if svc is None:
            raise HTTPException(404, f"service {sid} not found")
        return svc

    def group_or_404(gid: str) -> dict[str, Any]:
        g = store.group(gid)
        if g is None:
            raise HTTPException(404, f"env group {gid} not found")
        return g

    @app.get("/health")
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])

    # -- services ------------------------------------------------------------------------------
    def all_services() -> list[dict[str, Any]]:
        """Services then cron jobs, in Render's shape (a cron job is a service of type cron_job)."""
        return [service_json(s, owner(), base_host, args.host) for s in store.data["services"].values()] + [
            cron_job_json(c, owner(), base_host) for c in store.data.get("cron_jobs", {}).values()
        ]

    @v1.get("/services")
    def list_services(
        name: list[str] | None = Query(None), type: list[str] | None = Query(None), limit: int = 20
    ) -> list[dict[str, Any]]:
        out = [s for s in all_services() if (not name or s["name"] in name) and (not type or s["type"] in type)]
        return [{"service": s, "cursor": s["id"]} for s in out[:limit]]

    @v1.get("/services/{sid}")
    def retrieve_service(sid: str) -> dict[str, Any]:
        found = next((s for s in all_services() if s["id"] == sid), None)
        if found is None:
            raise HTTPException(404, f"service {sid} not found")
        return found

    @v1.get("/services/{sid}/env-vars")
    def service_env_vars(sid: str) -> list[dict[str, Any]]:
        if sid in store.data.get("cron_jobs", {}):
            return []  # the twin's cron jobs carry no variables of their own
        svc = service_or_404(sid)
        return [{"envVar": {"key": k, "value": v}, "cursor": k} for k, v in svc["env"].items()]

    @v1.put("/services/{sid}/env-vars")
    def replace_service_env_vars(sid: str, body: list[dict[str, Any]] = Body(...)) -> list[dict[str, Any]]:
        service_or_404(sid)
        store.replace_service_vars(sid, {str(x["key"]): str(x["value"]) for x in body})
        return service_env_vars(sid)

    @v1.get("/services/{sid}/env-vars/{key}")
    def retrieve_service_env_var(sid: str, key: str) -> dict[str, Any]:
        svc = service_or_404(sid)
        if key not in svc["env"]:
            raise HTTPException(404, f"env var {key} not found")
        return {"key": key, "value": svc["env"][key]}

    @v1.put("/services/{sid}/env-vars/{key}")
    def update_service_env_var(sid: str, key: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        service_or_404(sid)
        store.set_service_var(sid, key, str(body["value"]))
        return {"key": key, "value": str(body["value"])}

    @v1.delete("/services/{sid}/env-vars/{key}", status_code=204)
    def delete_service_env_var(sid: str, key: str) -> Response:
        service_or_404(sid)
        if not store.delete_service_var(sid, key):
            raise HTTPException(404, f"env var {key} not found")
        return Response(status_code=204)

    # -- deploys -------------------------------------------------------------------------------
    @v1.post("/services/{sid}/deploys", status_code=201)
    def create_deploy(sid: str, body: dict[str, Any] | None = Body(None)) -> dict[str, Any]:
        service_or_404(sid)
        rec = store.new_deploy(sid, image_url=(body or {}).get("imageUrl"))
        deploy_async(store, supervisor, sid, rec["id"])
        return deploy_json(rec)

    @v1.get("/services/{sid}/deploys")
    def list_deploys(sid: str, status: list[str] | None = Query(None), limit: int = 20) -> list[dict[str, Any]]:
        service_or_404(sid)
        recs = [d for d in store.deploys(sid) if not status or d["status"] in status]
        return [{"deploy": deploy_json(d), "cursor": d["id"]} for d in recs[:limit]]

    @v1.get("/services/{sid}/deploys/{did}")
    def retrieve_deploy(sid: str, did: str) -> dict[str, Any]:
        service_or_404(sid)
        rec = next((d for d in store.deploys(sid) if d["id"] == did), None)
        if rec is None:
            raise HTTPException(404, f"deploy {did} not found")
        return deploy_json(rec)

    # -- env groups ----------------------------------------------------------------------------
    @v1.get("/env-groups")
    def list_env_groups(name: list[str] | None = Query(None)) -> list[dict[str, Any]]:
        groups = [g for g in store.data["env_groups"].values() if not name or g["name"] in name]
        return [group_meta_json(g, owner(), store.data["services"]) for g in groups]

    @v1.get("/env-groups/{gid}")
    def retrieve_env_group(gid: str) -> dict[str, Any]:
        return group_json(group_or_404(gid), owner(), store.data["services"])

    @v1.get("/env-groups/{gid}/env-vars/{key}")
    def retrieve_env_group_env_var(gid: str, key: str) -> dict[str, Any]:
        g = group_or_404(gid)
        if key not in g["envVars"]:
            raise HTTPException(404, f"env var {key} not found")
        return {"key": key, "value": g["envVars"][key]}

    @v1.put("/env-groups/{gid}/env-vars/{key}")
    def update_env_group_env_var(gid: str, key: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        group_or_404(gid)
        store.set_group_var(gid, key, str(body["value"]))
        return retrieve_env_group(gid)

    @v1.delete("/env-groups/{gid}/env-vars/{key}", status_code=204)
    def delete_env_group_env_var(gid: str, key: str) -> Response:
        group_or_404(gid)
        if not store.delete_group_var(gid, key):
            raise HTTPException(404, f"env var {key} not found")
        return Response(status_code=204)

    @v1.post("/env-groups/{gid}/services/{sid}")
    def link_service(gid: str, sid: str) -> dict[str, Any]:
        group_or_404(gid), service_or_404(sid)
        store.link(gid, sid, True)
        return retrieve_env_group(gid)

    @v1.delete("/env-groups/{gid}/services/{sid}", status_code=204)
    def unlink_service(gid: str, sid: str) -> Response:
        group_or_404(gid), service_or_404(sid)
        store.link(gid, sid, False)
        return Response(status_code=204)

    # -- metrics -------------------------------------------------------------------------------
    def metric_route(metric: str) -> Any:
        def handler(
            resource: list[str] | None = Query(None),
            service: list[str] | None = Query(None),
            startTime: str | None = None,
            endTime: str | None = None,
            resolutionSeconds: int | None = None,
            quantile: float | None = None,
        ) -> list[dict[str, Any]]:
            ids = [*(resource or []), *(service or [])] or list(store.data["services"])
            out = []
            for sid in ids:
                svc = service_or_404(sid)
                out.append(
                    metrics.series(
                        metric,
                        svc,
                        store.data["metrics"].get(sid, {}),
                        start=startTime,
                        end=endTime,
                        resolution=resolutionSeconds,
                        quantile=quantile,
                    )
                )
            return out

        return handler

    for m in ("memory", "memory-limit", "cpu", "http-latency"):
        v1.add_api_route(f"/metrics/{m}", metric_route(m), methods=["GET"])

    # -- logs ----------------------------------------------------------------------------------
    @v1.get("/logs")
    def list_logs(
        ownerId: str,
        resource: list[str] = Query(...),
        text: list[str] | None = Query(None),
        startTime: str | None = None,
        endTime: str | None = None,
        direction: str = "backward",
        limit: int = Query(20, ge=1, le=100),
    ) -> dict[str, Any]:
        if ownerId != owner():
            raise HTTPException(404, f"owner {ownerId} not found")
        if direction not in ("forward", "backward"):
            raise HTTPException(400, "direction must be forward or backward")
        names = {sid: service_or_404(sid)["name"] for sid in resource}
        return logs.query(
            {sid: supervisor.log_path(name) for sid, name in names.items()},
            text=text or [],
            start=startTime,
            end=endTime,
            backward=direction == "backward",
            limit=limit,
        )

    app.include_router(v1)

    # -- twin controls ---------------------------------------------------------------------------
    twin = APIRouter(prefix="/__twin", dependencies=[Depends(authorize)])

    @twin.put("/metrics/{sid}")
    def set_metrics(sid: str, body: dict[str, float] = Body(...)) -> dict[str, Any]:
        service_or_404(sid)
        unknown = set(body) - set(metrics.DEFAULTS)
        if unknown:
            raise HTTPException(400, f"unknown metric profile fields {sorted(unknown)}")
        store.set_metrics(sid, body)
        return {**metrics.DEFAULTS, **store.data["metrics"][sid]}

    @twin.get("/services")
    def twin_services() -> list[dict[str, Any]]:
        return [
            {
                "id": s["id"],
                "name": s["name"],
                "port": s["port"],
                "pid": supervisor.pid(s["name"]),
                # a background worker listens on no port (it logs its health)
                "health_url": f"http://{args.host}:{s['port']}/healthz" if s["kind"] == "web" else None,
            }
            for s in store.data["services"].values()
        ]

    app.include_router(twin)
    return app
