"""What every provider module shares: the :class:`Provider` base, HTTP with retries, errors.

A provider is one vendor's API client (Render, Cloudflare, Supabase, S3). It wraps the vendor's own
client (boto3, the ``cloudflare`` SDK, Render's generated client) or, where the vendor ships none that
serves, httpx against its public API. It is built from the typed inventory with
:meth:`Provider.from_environment`: base URLs and credentials come from the inventory's ``endpoints`` and
``credentials`` (secret references resolved by ``runbooks.secret``), so the same code runs against
production and the twin. It is a context manager that closes its HTTP clients, and its :attr:`name`
labels its errors and keys it in :mod:`runbooks.providers.registry`.

The DNS resolver, the TLS client and the PostgreSQL client (``dns.py``, ``tls.py``, ``postgres.py``) are
plain clients, not providers: each speaks a protocol to whatever the inventory points at, holds no vendor
API credential and no long-lived client to close (a socket per query, a client per request, a
connection per use); they too are built with a typed ``from_environment(env)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment


class Provider:
    """A vendor's API client built from the inventory; ``with`` closes its HTTP clients."""

    #: the vendor's name: the label of its errors and its key in the registry
    name: ClassVar[str]

    @classmethod
    def from_environment(cls, env: Environment) -> Self:
        """The provider for ``env``: endpoints from the inventory, credentials through ``runbooks.secret``."""
        raise NotImplementedError(f"{cls.__name__} does not say how it is built from the inventory")

    def close(self) -> None:
        """Close the HTTP clients the provider holds (a provider without any has nothing to close)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProviderError(RuntimeError):
    """A vendor API refused or failed a call; the message says which call and why (never a secret)."""

    def __init__(self, provider: str, operation: str, detail: str, *, status: int | None = None):
        self.provider, self.operation, self.status = provider, operation, status
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{provider}: {operation} failed{code}: {detail}")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (429, 502, 503, 504)


#: decorator for idempotent calls: retries transport errors and 429/5xx with exponential backoff
retry_transient = retry(
    retry=retry_if_exception(_transient),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.2, max=3),
    reraise=True,
)


def http_client(
    base_url: str,
    *,
    token: str | None = None,
    verify: Any = True,
    timeout: float = 15.0,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    h = {"Accept": "application/json", "User-Agent": "spectral-runbooks"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    return httpx.Client(base_url=base_url.rstrip("/"), headers=h, verify=verify, timeout=timeout)
