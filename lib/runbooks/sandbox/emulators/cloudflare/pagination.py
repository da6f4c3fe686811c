"""Cloudflare v4 list pagination: ``page`` and ``per_page`` in, one :class:`Page` with ``result_info`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError


@dataclass(frozen=True)
class Page:
    """One page of a list, as v4's ``result`` plus ``result_info``."""

    items: list[dict[str, Any]]
    page: int
    per_page: int
    total_count: int

    def result_info(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "count": len(self.items),
            "total_count": self.total_count,
            "total_pages": max(1, -(-self.total_count // self.per_page)),
        }


def paginate(items: list[dict[str, Any]], page: int, per_page: int) -> Page:
    """Page ``page`` of ``items``; pages past the end are empty (the SDK stops there)."""
    if page < 1:
        raise CloudflareError(400, 1004, "page must be a positive integer")
    if not 5 <= per_page <= 5000:
        raise CloudflareError(400, 1004, "per_page must be between 5 and 5000")
    return Page(items[(page - 1) * per_page : page * per_page], page, per_page, len(items))
