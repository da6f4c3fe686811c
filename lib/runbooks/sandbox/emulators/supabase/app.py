"""The Supabase twin (FastAPI): the Management API (project, backups/PITR, API keys, JWT signing keys, posture
settings) and the project's API (REST root, auth). Run: ``python -m runbooks.sandbox.emulators.supabase``.

Split as moto splits a service: :mod:`.models` (``SupabaseBackend`` and its area models) holds the state's
behaviour and validation; the router modules (:mod:`.project`, :mod:`.backups`, :mod:`.keys`, :mod:`.auth`,
:mod:`.posture`) only parse HTTP and call it. This module builds the model from the twin's files (the
project's facts in ``<root>/supabase/project.json``, written by the supabase component; the sandbox
inventory) and assembles the routers with the error handlers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from runbooks.sandbox.emulators.common import EmulatorArgs, JsonState
from runbooks.sandbox.emulators.supabase import auth, backups, keys, posture, project
from runbooks.sandbox.emulators.supabase.database import Database, TwinDatabase
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.models import SupabaseBackend

PROJECT_FILE = "project.json"
#: router modules, in inclusion order
ROUTERS = (project.router, backups.router, keys.router, auth.router, posture.router)


def _inventory() -> dict[str, Any]:
    import yaml

    from runbooks.paths import inventory_dir

    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text())
    return data if isinstance(data, dict) else {}


def backend_for(args: EmulatorArgs, database: Database | None = None) -> SupabaseBackend:
    """The state model of the twin run with ``args`` (on the twin's Postgres unless ``database`` is given)."""
    path = args.state_dir / PROJECT_FILE
    return SupabaseBackend(
        root=args.root,
        state=JsonState(args.state_dir / "state.json"),
        project=json.loads(path.read_text()) if path.is_file() else {},
        faults=args.faults,
        inventory=_inventory(),
        database=database or TwinDatabase(args.root),
    )


def create_app(args: EmulatorArgs, database: Database | None = None) -> FastAPI:
    app = FastAPI(title="Supabase twin", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.backend = backend_for(args, database)

    # the Management API answers errors as {"message": "..."}
    @app.exception_handler(SupabaseError)
    async def _error(_: Request, exc: SupabaseError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/health")
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    for router in ROUTERS:
        app.include_router(router)
    return app
