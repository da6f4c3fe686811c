"""Supabase: the project settings verify-platform-posture reads, through the Management API.

Billing add-ons (the PITR window), SSL enforcement, network restrictions, the auth config (access-token
lifetime) and the JWT signing keys; shapes per the Management API's OpenAPI document
(``ListProjectAddonsResponse``, ``SslEnforcementResponse``, ``NetworkRestrictionsResponse``,
``AuthConfigResponse``, ``SigningKeysResponse``). Read-only.
"""

from __future__ import annotations

from typing import Any

from runbooks.providers.supabase import SupabaseManagement


class SupabasePlatform(SupabaseManagement):
    def _get(self, path: str, operation: str) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.project_path}{path}", operation=operation) or {})

    def addons(self) -> dict[str, Any]:
        return self._get("/billing/addons", "list add-ons")

    def ssl_enforcement(self) -> dict[str, Any]:
        return self._get("/ssl-enforcement", "get SSL enforcement")

    def network_restrictions(self) -> dict[str, Any]:
        return self._get("/network-restrictions", "get network restrictions")

    def auth_config(self) -> dict[str, Any]:
        """``GET .../config/auth``: only non-secret settings are read from it (``jwt_exp``)."""
        return self._get("/config/auth", "get auth config")

    def signing_keys(self) -> list[dict[str, Any]]:
        return list(self._get("/config/auth/signing-keys", "list signing keys").get("keys", []))
