"""Assemble the Supabase twin from its router modules. Run: python -m runbooks.sandbox.emulators.supabase"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from runbooks.sandbox.emulators.common import EmulatorArgs, JsonState

#: router modules, in inclusion order; a module that does not exist yet is skipped
AREAS = ("project", "backups", "keys", "auth", "posture")


@dataclass
class SupabaseContext:
    args: EmulatorArgs
    state: JsonState
    extra: dict[str, Any] = field(default_factory=dict)


def create_app(args: EmulatorArgs) -> FastAPI:
    app = FastAPI(title="Supabase twin", openapi_url=None, docs_url=None, redoc_url=None)
    ctx = SupabaseContext(args=args, state=JsonState(args.state_dir / "state.json"))
    app.state.ctx = ctx

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        # the Management API answers errors as {"message": "..."}
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/health")
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    for area in AREAS:
        try:
            mod = importlib.import_module(f"{__package__}.{area}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{area}":
                continue
            raise
        if hasattr(mod, "on_startup"):
            mod.on_startup(ctx)
        if hasattr(mod, "router"):
            app.include_router(mod.router)
    return app
