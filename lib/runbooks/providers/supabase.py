"""Supabase: the Management API (api.supabase.com/v1) through httpx.

The core client lives here; each area of the API (backups and PITR, API keys and JWT signing keys)
adds its calls as methods in this module or, for the auth/keys surface, in ``supabase_keys.py``.
Request and response shapes follow the Management API's OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import httpx

from runbooks import redact
from runbooks.providers.base import Provider, ProviderError, http_client, retry_transient

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

#: the services a restore makes unavailable and whose health the PITR runbook waits for
HEALTH_SERVICES = ("db", "auth", "rest", "storage", "realtime", "pooler")


@dataclass(frozen=True)
class PitrWindow:
    enabled: bool
    earliest: datetime | None
    latest: datetime | None


class SupabaseManagement(Provider):
    """Client of the Supabase Management API for one project."""

    name = "supabase"

    def __init__(self, base_url: str, access_token: str, project_ref: str, *, timeout: float = 30.0):
        self.project_ref = project_ref
        self._http = http_client(base_url, token=access_token, timeout=timeout)

    @classmethod
    def from_environment(cls, env: Environment) -> Self:
        from runbooks.secrets import secret

        return cls(env.endpoints.supabase_api, secret(env.credentials.supabase_access_token), env.supabase_project_ref)

    def close(self) -> None:
        self._http.close()

    @property
    def project_path(self) -> str:
        return f"/v1/projects/{self.project_ref}"

    def request(self, method: str, path: str, *, operation: str, idempotent: bool | None = None, **kwargs: Any) -> Any:
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
            raise ProviderError(self.name, operation, str(e)) from e
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("message", resp.text)
            except ValueError:
                detail = resp.text
            raise ProviderError(self.name, operation, redact.cut(str(detail), 500), status=resp.status_code)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    # -- project status and services health ---------------------------------------------------------
    def project(self) -> dict[str, Any]:
        """``GET /v1/projects/{ref}`` (``V1ProjectWithDatabaseResponse``)."""
        return dict(self.request("GET", self.project_path, operation="get project"))

    def project_status(self) -> str:
        return str(self.project()["status"])

    def services_health(
        self, services: Sequence[str] = HEALTH_SERVICES, timeout_ms: int = 2000
    ) -> list[dict[str, Any]]:
        """``GET /v1/projects/{ref}/health`` (a list of ``V1ServiceHealthResponse``)."""
        return list(
            self.request(
                "GET",
                f"{self.project_path}/health",
                operation="get services health",
                params={"services": list(services), "timeout_ms": timeout_ms},
            )
        )

    # -- backups and point-in-time recovery ---------------------------------------------------------
    def list_backups(self) -> dict[str, Any]:
        """``GET /v1/projects/{ref}/database/backups`` (``V1BackupsResponse``)."""
        return dict(self.request("GET", f"{self.project_path}/database/backups", operation="list backups"))

    def pitr_window(self) -> PitrWindow:
        """Whether PITR is enabled and the window of restorable times, as the API reports them."""
        b = self.list_backups()
        data = b.get("physical_backup_data") or {}
        earliest, latest = data.get("earliest_physical_backup_date_unix"), data.get("latest_physical_backup_date_unix")
        return PitrWindow(
            enabled=bool(b.get("pitr_enabled")),
            earliest=datetime.fromtimestamp(earliest, UTC) if earliest is not None else None,
            latest=datetime.fromtimestamp(latest, UTC) if latest is not None else None,
        )

    def restore_pitr_request(self, target_unix: int) -> tuple[str, str, dict[str, Any]]:
        """(method, path, body) of the restore-pitr call, exactly as :meth:`restore_pitr` sends it."""
        return "POST", f"{self.project_path}/database/backups/restore-pitr", {"recovery_time_target_unix": target_unix}

    def restore_pitr(self, target_unix: int) -> None:
        """``POST .../database/backups/restore-pitr``: starts the restore (never retried: not idempotent)."""
        method, path, body = self.restore_pitr_request(target_unix)
        self.request(method, path, operation="restore-pitr", json=body, idempotent=False)

    def create_restore_point(self, name: str) -> dict[str, Any]:
        """``POST .../database/backups/restore-point`` (``V1RestorePointResponse``); name of at most 20 chars."""
        return dict(
            self.request(
                "POST",
                f"{self.project_path}/database/backups/restore-point",
                operation="create restore point",
                json={"name": name},
                idempotent=False,
            )
        )

    def get_restore_point(self, name: str | None = None) -> dict[str, Any]:
        params = {"name": name} if name else None
        return dict(
            self.request(
                "GET",
                f"{self.project_path}/database/backups/restore-point",
                operation="get restore point",
                params=params,
            )
        )
