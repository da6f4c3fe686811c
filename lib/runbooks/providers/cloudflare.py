"""Cloudflare: zones, DNS records, zone settings, Pages, API tokens and /ips, through the official SDK.

The ``cloudflare`` SDK is pointed at ``env.endpoints.cloudflare_api`` (the real API, or the twin's
emulator) with a token resolved by ``runbooks.secret``; the same code runs against both. SDK errors are
turned into :class:`~runbooks.providers.base.ProviderError` naming the operation (never the token).
The client is thread-safe, so concurrent checks share one provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TypeVar

import cloudflare

from runbooks.providers.base import Provider, ProviderError

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

#: Cloudflare's published ranges (https://www.cloudflare.com/ips/): the fallback when /ips cannot be read
PUBLISHED_IPV4: tuple[str, ...] = (
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
)
PUBLISHED_IPV6: tuple[str, ...] = (
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
)

T = TypeVar("T")


@dataclass(frozen=True)
class DnsRecord:
    id: str
    name: str
    type: str
    content: str
    proxied: bool
    ttl: int
    comment: str | None = None

    @classmethod
    def from_sdk(cls, r: Any) -> DnsRecord:
        return cls(
            id=r.id,
            name=r.name,
            type=r.type,
            content=r.content,
            proxied=bool(r.proxied),
            ttl=int(r.ttl or 1),
            comment=getattr(r, "comment", None),
        )


@dataclass(frozen=True)
class IpRanges:
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    source: str  #: "from /ips" or "built-in list" (when /ips could not be read)


@dataclass(frozen=True)
class PagesProject:
    name: str
    subdomain: str
    domains: tuple[str, ...]
    uses_functions: bool  #: the project's production deployment ships a Function
    domain_status: dict[str, str]  #: custom domain -> status ("active", "pending"...)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    status: str
    #: the token's access policies as the API gives them (``effect``, ``permission_groups``, ``resources``)
    policies: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CreatedToken:
    """A token just created: its value is returned once by Cloudflare and cannot be read back."""

    info: TokenInfo
    value: str = field(repr=False)


class CloudflareProvider(Provider):
    name = "cloudflare"

    def __init__(
        self, base_url: str, api_token: str, *, account_id: str, zone: str, timeout: float = 20.0, max_retries: int = 2
    ):
        self.account_id, self.zone_name = account_id, zone
        self._client = cloudflare.Cloudflare(
            api_token=api_token, base_url=base_url.rstrip("/"), timeout=timeout, max_retries=max_retries
        )
        self._zone_id: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, env: Environment) -> Self:
        from runbooks.secrets import secret

        return cls(
            env.endpoints.cloudflare_api,
            secret(env.credentials.cloudflare_api_token),
            account_id=env.cloudflare_account_id,
            zone=env.zone,
        )

    def close(self) -> None:
        self._client.close()

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except cloudflare.APIStatusError as e:
            detail = "; ".join(f"{x.get('code')}: {x.get('message')}" for x in _errors(e.body)) or str(e.message)
            raise ProviderError(self.name, operation, detail, status=e.status_code) from None
        except cloudflare.APIError as e:
            raise ProviderError(self.name, operation, type(e).__name__ + ": " + str(e.message)) from None

    # -- zone ------------------------------------------------------------------------------------
    @property
    def zone_id(self) -> str:
        with self._lock:
            if self._zone_id is None:
                zones = self._call(
                    f"look up zone {self.zone_name}", lambda: list(self._client.zones.list(name=self.zone_name))
                )
                if not zones:
                    raise ProviderError(
                        self.name,
                        f"look up zone {self.zone_name}",
                        "no such zone in this account (is the token scoped to it?)",
                    )
                self._zone_id = zones[0].id
            return self._zone_id

    # -- records -----------------------------------------------------------------------------------
    def list_records(self, *, name: str | None = None, type: str | None = None, per_page: int = 100) -> list[DnsRecord]:
        """Every record of the zone matching the filters: all pages, stopping at ``result_info.total_pages``
        (the SDK's own iteration asks for one more, empty, page)."""
        params: dict[str, Any] = {"zone_id": self.zone_id, "per_page": per_page}
        if name:
            params["name"] = {"exact": name}
        if type:
            params["type"] = type

        def fetch() -> list[DnsRecord]:
            page = self._client.dns.records.list(**params)
            out = [DnsRecord.from_sdk(r) for r in page.result]
            while (
                page.result
                and (info := page.result_info) is not None
                and (info.page or 1) < (getattr(info, "total_pages", None) or 0)
            ):
                page = page.get_next_page()
                out += [DnsRecord.from_sdk(r) for r in page.result]
            return out

        return self._call(f"list DNS records{' of ' + name if name else ''}", fetch)

    def find_record(self, name: str) -> DnsRecord | None:
        """The A, AAAA or CNAME record of ``name`` (a CNAME excludes the others), or None."""
        records = [r for r in self.list_records(name=name) if r.type in ("A", "AAAA", "CNAME")]
        return next((r for r in records if r.type == "CNAME"), records[0] if records else None)

    def get_record(self, record_id: str) -> DnsRecord:
        r = self._call(
            f"get DNS record {record_id}", lambda: self._client.dns.records.get(record_id, zone_id=self.zone_id)
        )
        return DnsRecord.from_sdk(r)

    def edit_record(
        self, record: DnsRecord, *, content: str | None = None, proxied: bool | None = None, comment: str | None = None
    ) -> DnsRecord:
        """PATCH ``record``: only the given fields change (name, type and TTL are sent as they are)."""
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = content
        if proxied is not None:
            changes["proxied"] = proxied
        if comment is not None:
            changes["comment"] = comment
        r = self._call(
            f"edit DNS record {record.name}",
            lambda: self._client.dns.records.edit(  # type: ignore[call-overload]  # one overload per record type
                record.id,
                zone_id=self.zone_id,
                name=record.name,
                type=record.type,
                ttl=record.ttl,
                **changes,
            ),
        )
        return DnsRecord.from_sdk(r)

    # -- settings ------------------------------------------------------------------------------------
    def setting(self, setting_id: str) -> str:
        s = self._call(
            f"read zone setting {setting_id}", lambda: self._client.zones.settings.get(setting_id, zone_id=self.zone_id)
        )
        return str(getattr(s, "value", None))

    def set_setting(self, setting_id: str, value: str) -> str:
        s = self._call(
            f"edit zone setting {setting_id}",
            lambda: self._client.zones.settings.edit(setting_id, zone_id=self.zone_id, value=value),
        )
        return str(getattr(s, "value", None))

    # -- Pages ----------------------------------------------------------------------------------------
    def pages_project(self, name: str) -> PagesProject:
        p = self._call(
            f"get Pages project {name}", lambda: self._client.pages.projects.get(name, account_id=self.account_id)
        )
        domains = self._call(
            f"list custom domains of Pages project {name}",
            lambda: list(self._client.pages.projects.domains.list(name, account_id=self.account_id)),
        )
        deployment = p.latest_deployment or p.canonical_deployment
        uses = bool(
            deployment.uses_functions if deployment and deployment.uses_functions is not None else p.uses_functions
        )
        return PagesProject(
            name=p.name,
            subdomain=p.subdomain or "",
            domains=tuple(p.domains or ()),
            uses_functions=uses,
            domain_status={d.name: d.status for d in domains},
        )

    # -- /ips -------------------------------------------------------------------------------------------
    def ip_ranges(self) -> IpRanges:
        """Cloudflare's ranges from /ips, or the built-in published list if /ips cannot be read."""
        try:
            r = self._client.ips.list()
            v4 = tuple(getattr(r, "ipv4_cidrs", None) or ())
            v6 = tuple(getattr(r, "ipv6_cidrs", None) or ())
            if v4:
                return IpRanges(v4, v6, "from /ips")
        except cloudflare.APIError:
            pass
        return IpRanges(PUBLISHED_IPV4, PUBLISHED_IPV6, "built-in list")

    # -- tokens (key rotation) ----------------------------------------------------------------------------
    def verify_token(self) -> TokenInfo:
        """The calling token's id and status; raises ProviderError if the token is not valid."""
        r = self._call("verify API token", lambda: self._client.user.tokens.verify())
        if r is None:
            raise ProviderError(self.name, "verify API token", "empty answer")
        return TokenInfo(id=r.id, name="", status=str(r.status))

    def list_tokens(self) -> list[TokenInfo]:
        return self._call("list API tokens", lambda: [_token_info(t) for t in self._client.user.tokens.list()])

    def get_token(self, token_id: str) -> TokenInfo | None:
        """The token ``token_id`` with its policies, or None if it does not exist (deleted)."""
        try:
            t = self._call(f"get API token {token_id}", lambda: self._client.user.tokens.get(token_id))
        except ProviderError as e:
            if e.status == 404:
                return None
            raise
        if t is None:
            raise ProviderError(self.name, f"get API token {token_id}", "empty answer")
        return _token_info(t)

    def find_tokens(self, name: str) -> list[TokenInfo]:
        """Every token named ``name`` (Cloudflare does not make names unique)."""
        return [t for t in self.list_tokens() if t.name == name]

    def create_token(self, name: str, policies: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> CreatedToken:
        """Create a token with ``policies`` (``effect``, ``permission_groups`` ``[{id}]``, ``resources``).

        The value is returned once: the caller passes it straight to ``runbooks.secrets.protect`` and
        its store (an env group), never prints it."""
        body = [
            {
                "effect": p["effect"],
                "permission_groups": [{"id": g["id"]} for g in p["permission_groups"]],
                "resources": dict(p["resources"]),
            }
            for p in policies
        ]
        t = self._call(
            f"create API token {name}",
            lambda: self._client.user.tokens.create(name=name, policies=body),  # type: ignore[arg-type]  # plain dicts
        )
        if t is None or not t.value or not t.id:
            raise ProviderError(self.name, f"create API token {name}", "no token or value returned")
        return CreatedToken(_token_info(t), str(t.value))

    def delete_token(self, token_id: str) -> None:
        """Delete the token: its value is refused from then on."""
        self._call(f"delete API token {token_id}", lambda: self._client.user.tokens.delete(token_id))

    def roll_token(self, token_id: str) -> str:
        """Roll the token's secret: returns the new value; the old value stops working at once.

        The caller must pass the value straight to ``runbooks.secrets`` registration / its store and
        never print it.
        """
        value = self._call(f"roll API token {token_id}", lambda: self._client.user.tokens.value.update(token_id))
        if not value:
            raise ProviderError(self.name, f"roll API token {token_id}", "no value returned")
        return str(value)


def _token_info(t: Any) -> TokenInfo:
    policies = tuple(
        {
            "effect": p.effect,
            "permission_groups": [{"id": g.id, "name": g.name or ""} for g in p.permission_groups],
            "resources": dict(p.resources),
        }
        for p in (getattr(t, "policies", None) or ())
    )
    return TokenInfo(id=t.id or "", name=t.name or "", status=str(t.status), policies=policies)


def _errors(body: object) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        errs = body.get("errors")
        if isinstance(errs, list):
            return [e for e in errs if isinstance(e, dict)]
    return []
