"""The rules of a DNS record in the Cloudflare twin, apart from any state: names, content, the record
checks Cloudflare applies on create and edit, and the list filters (:class:`RecordQuery`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError

RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")
RECORD_ORDERS = ("type", "name", "content", "ttl", "proxied")
#: the fields a PATCH or PUT may change
EDITABLE = ("name", "type", "content", "proxied", "ttl", "comment", "tags")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def fqdn(zone_name: str, name: str) -> str:
    """A record name as stored: lower case, absolute (``@`` and relative names are completed with the zone)."""
    name = name.lower().rstrip(".")
    if name in ("@", ""):
        return zone_name
    return name if name == zone_name or name.endswith("." + zone_name) else f"{name}.{zone_name}"


def valid_content(rtype: str, content: str) -> bool:
    """Whether ``content`` is well-formed for a record of type ``rtype``."""
    if rtype == "A":
        try:
            return isinstance(ipaddress.ip_address(content), ipaddress.IPv4Address)
        except ValueError:
            return False
    if rtype == "AAAA":
        try:
            return isinstance(ipaddress.ip_address(content), ipaddress.IPv6Address)
        except ValueError:
            return False
    if rtype == "CNAME":
        return bool(_HOST_RE.match(content.lower().rstrip(".")))
    return bool(content)


def require_fields(body: dict[str, Any]) -> None:
    """A create or overwrite names the record's name, type and content."""
    missing = [k for k in ("name", "type", "content") if not body.get(k)]
    if missing:
        raise CloudflareError(400, 9000, f"DNS record is missing {', '.join(missing)}")


def check_record(r: dict[str, Any], zone_records: Iterable[dict[str, Any]]) -> None:
    """Refuse a record Cloudflare would refuse: type, content, proxied, comment, and a CNAME sharing its
    name with another record of the zone (``zone_records``; the record itself, by id, is ignored)."""
    if r["type"] not in RECORD_TYPES:
        raise CloudflareError(400, 9004, f"DNS record type {r['type']!r} is not supported by the twin")
    if not valid_content(r["type"], str(r.get("content", ""))):
        raise CloudflareError(400, 9005, f"Content for {r['type']} record is invalid.")
    if not isinstance(r.get("proxied"), bool):
        raise CloudflareError(400, 9003, "Invalid 'proxied' value, must be a boolean")
    if r.get("comment") is not None and len(str(r["comment"])) > 100:
        raise CloudflareError(400, 9104, "Comment is too long (maximum 100 characters)")
    if r["type"] == "TXT" and r["proxied"]:
        raise CloudflareError(400, 9003, "TXT records cannot be proxied")
    clash = [o for o in zone_records if o["name"] == r["name"] and o["id"] != r.get("id")]
    if clash and ("CNAME" in {r["type"], *(o["type"] for o in clash)}):
        raise CloudflareError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")


@dataclass(frozen=True)
class RecordQuery:
    """The filters and order of a DNS record list (``None``: not filtered on)."""

    name: str | None = None  #: exact; relative names are completed with the zone
    name_contains: str | None = None
    name_startswith: str | None = None
    name_endswith: str | None = None
    type: str | None = None
    content: str | None = None
    proxied: bool | None = None
    match_any: bool = False  #: a record matching any filter is listed (default: all of them)
    order: str = "type"
    descending: bool = False

    def _filters(self, zone_name: str) -> list[tuple[Any, Callable[[dict[str, Any], Any], bool]]]:
        return [
            (self.name, lambda r, v: r["name"] == fqdn(zone_name, v)),
            (self.name_contains, lambda r, v: v.lower() in r["name"]),
            (self.name_startswith, lambda r, v: r["name"].startswith(v.lower())),
            (self.name_endswith, lambda r, v: r["name"].endswith(v.lower())),
            (self.type, lambda r, v: r["type"] == v.upper()),
            (self.content, lambda r, v: r["content"] == v),
            (self.proxied, lambda r, v: r["proxied"] == v),
        ]

    def matches(self, record: dict[str, Any], zone_name: str) -> bool:
        """Whether ``record`` (of the zone ``zone_name``) passes the active filters (all, or any)."""
        hits = [f(record, v) for v, f in self._filters(zone_name) if v is not None]
        if not hits:
            return True
        return any(hits) if self.match_any else all(hits)

    def check_order(self) -> None:
        if self.order not in RECORD_ORDERS:
            raise CloudflareError(400, 1004, f"invalid order {self.order!r}")
