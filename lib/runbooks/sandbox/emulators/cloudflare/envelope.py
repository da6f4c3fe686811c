"""Cloudflare's v4 response envelopes: ``{"success", "errors", "messages", "result"[, "result_info"]}``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class CloudflareError(Exception):
    """Raised by a route; rendered as Cloudflare's error envelope with ``status``."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def ok(
    result: Any, *, messages: list[dict[str, Any]] | None = None, result_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def error_response(err: CloudflareError) -> JSONResponse:
    return JSONResponse(
        {"success": False, "errors": [{"code": err.code, "message": err.message}], "messages": [], "result": None},
        status_code=err.status,
    )


def paginate(items: list[dict[str, Any]], page: int, per_page: int) -> dict[str, Any]:
    """One page of ``items`` in the v4 envelope; pages past the end are empty (the SDK stops there)."""
    if page < 1:
        raise CloudflareError(400, 1004, "page must be a positive integer")
    if not 5 <= per_page <= 5000:
        raise CloudflareError(400, 1004, "per_page must be between 5 and 5000")
    total = len(items)
    chunk = items[(page - 1) * per_page : page * per_page]
    total_pages = max(1, -(-total // per_page))
    return ok(
        chunk,
        result_info={
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": total,
            "total_pages": total_pages,
        },
    )
