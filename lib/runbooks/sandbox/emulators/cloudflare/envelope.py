"""Cloudflare's v4 response envelopes: ``{"success", "errors", "messages", "result"[, "result_info"]}``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError
from runbooks.sandbox.emulators.cloudflare.pagination import Page

__all__ = ["CloudflareError", "error_body", "error_response", "ok", "paged"]


def ok(
    result: Any, *, messages: list[dict[str, Any]] | None = None, result_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def paged(page: Page) -> dict[str, Any]:
    """One page of a list, with ``result_info`` (page, per_page, count, total_count, total_pages)."""
    return ok(page.items, result_info=page.result_info())


def error_body(err: CloudflareError) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": err.code, "message": err.message}], "messages": [], "result": None}


def error_response(err: CloudflareError) -> JSONResponse:
    return JSONResponse(error_body(err), status_code=err.status)
