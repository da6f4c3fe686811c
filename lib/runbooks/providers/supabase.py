"""Supabase: the Management API (api.supabase.com/v1) through httpx.

The core client lives here; each area of the API (backups and PITR, API keys and JWT signing keys)
adds its calls as methods in this module or, for the auth/keys surface, in ``supabase_keys.py``.
Request and response shapes follow the Management API's OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import httpx

from runbooks.providers.base import ProviderError, http_client, retry_transient


class SupabaseManagement:
    """Client of the Supabase Management API for one project."""

    provider = "supabase"

    def __init__(self, base_url: str, access_token: str, project_ref: str, *, timeout: float = 30.0):
        self.project_ref = project_ref
        self._http = http_client(base_url, token=access_token, timeout=timeout)

    @classmethod
    def from_environment(cls, env: Any) -> SupabaseManagement:
        from runbooks.secrets import secret

        return cls(env.endpoints.supabase_api, secret(env.credentials.supabase_access_token),
                   env.supabase_project_ref)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SupabaseManagement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def project_path(self) -> str:
        return f"/v1/projects/{self.project_ref}"

    def request(self, method: str, path: str, *, operation: str, idempotent: bool | None = None,
                **kwargs: Any) -> Any:
        """Call the API; raise ProviderError naming ``operation`` on any non-2xx answer."""
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent

        def call() -> httpx.Response:
            r = self._http.request(method, path, **kwargs)
            if r.status_code in (429, 502, 503, 504) and idempotent:
                r.raise_for_status()
            return r

        try:
            resp = retry_transient(call)() if idempotent else call()
        except httpx.HTTPError as e:
            raise ProviderError(self.provider, operation, str(e)) from e
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("message", resp.text)
            except ValueError:
                detail = resp.text
            raise ProviderError(self.provider, operation, str(detail)[:500], status=resp.status_code)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text
