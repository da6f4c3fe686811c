"""Deploys with Render's status transitions: created -> build_in_progress -> update_in_progress -> live.

The update phase restarts the twin service with the env the deploy captured, then waits for its health
check: a 2xx makes the deploy ``live`` (the previous live deploy becomes ``deactivated``), anything else
``update_failed``. A service marked ``ignores_deploys`` (fault ``stale-service``) reports ``live`` but
keeps running its old process. A background worker has no health check on Render: its deploy is
``live`` once its process runs (it reports its health in its log, docs/SERVICE_CONTRACT.md).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from runbooks.sandbox.emulators.render.store import RenderStore
from runbooks.sandbox.emulators.render.supervisor import Supervisor

#: seconds spent in each phase before the update (the twin is fast, but the transitions are observable)
PHASE_SECONDS = 0.3
HEALTH_TIMEOUT = 20.0


def heartbeat_of(store: RenderStore, svc: dict[str, Any]) -> tuple[float, str] | None:
    """(seconds, marker) for a background worker (it logs its health), None for a web service."""
    if svc["kind"] != "worker":
        return None
    hb = store.data.get("heartbeat") or {}
    return float(hb.get("seconds", 1)), str(hb.get("marker", "spectral-health "))


def start_service(store: RenderStore, supervisor: Supervisor, svc: dict[str, Any], env: dict[str, str]) -> int:
    return supervisor.start(
        svc["name"], svc["port"], env, key_names=store.data.get("key_names", []), heartbeat=heartbeat_of(store, svc)
    )


def start_live(store: RenderStore, supervisor: Supervisor) -> None:
    """Start every service with the env of its live deploy (emulator start-up)."""
    for sid, svc in store.data["services"].items():
        live = store.live_deploy(sid)
        start_service(store, supervisor, svc, live["_env"] if live else store.merged_env(sid))


def run_deploy(store: RenderStore, supervisor: Supervisor, sid: str, deploy_id: str) -> None:
    svc = store.service(sid)
    rec = next((d for d in store.deploys(sid) if d["id"] == deploy_id), None)
    if svc is None or rec is None:
        return
    store.set_deploy_status(sid, deploy_id, "build_in_progress")
    time.sleep(PHASE_SECONDS)
    store.set_deploy_status(sid, deploy_id, "update_in_progress")
    time.sleep(PHASE_SECONDS)
    if svc.get("ignores_deploys"):
        store.set_deploy_status(sid, deploy_id, "live")
        return
    start_service(store, supervisor, svc, rec["_env"])
    if heartbeat_of(store, svc) is not None:
        ok = supervisor.wait_started(svc["name"], HEALTH_TIMEOUT)
    else:
        code, _ = supervisor.wait_health(svc["port"], HEALTH_TIMEOUT)
        ok = 200 <= code < 300
    store.set_deploy_status(sid, deploy_id, "live" if ok else "update_failed")


def deploy_async(store: RenderStore, supervisor: Supervisor, sid: str, deploy_id: str) -> threading.Thread:
    t = threading.Thread(
        target=run_deploy, args=(store, supervisor, sid, deploy_id), daemon=True, name=f"deploy-{deploy_id}"
    )
    t.start()
    return t
