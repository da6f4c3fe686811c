"""What every provider module shares: construction from the inventory, HTTP with retries, errors.

A provider wraps one vendor's own client (boto3, the ``cloudflare`` SDK, psycopg, dnspython) or, where
the vendor ships none that serves, httpx against its public API. Base URLs and credentials come from
the inventory's ``endpoints`` and ``credentials`` (secret references resolved by ``runbooks.secret``),
so the same code runs against production and the twin.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)


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
