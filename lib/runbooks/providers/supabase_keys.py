"""Supabase keys: API keys (publishable, secret) and JWT signing keys through the Management API, plus the
project's own surface that uses them (REST with an ``apikey``, the token endpoint, JWKS).

Request and response shapes follow the Management API's OpenAPI document (``ApiKeyResponse``,
``CreateApiKeyBody``, ``SigningKeyResponse``, ``SigningKeysResponse``). Key values and tokens are
registered for redaction before they are returned (:func:`runbooks.secrets.protect`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import httpx

from runbooks import redact
from runbooks.providers.base import ProviderError
from runbooks.providers.supabase import SupabaseManagement
from runbooks.secrets import protect

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment


@dataclass(frozen=True)
class ApiKey:
    id: str
    type: str
    name: str
    prefix: str | None
    inserted_at: str | None
    value: str | None = field(default=None, repr=False)  #: only when revealed


@dataclass(frozen=True)
class SigningKey:
    id: str
    algorithm: str
    status: str
    public_jwk: dict[str, Any] | None
    created_at: str
    updated_at: str


def _api_key(d: dict[str, Any]) -> ApiKey:
    value = d.get("api_key")
    revealed = value if isinstance(value, str) and "·" not in value and value != d.get("prefix") else None
    if revealed:
        protect(revealed, f"supabase:api-key:{d.get('name')}")
    return ApiKey(
        str(d.get("id")), str(d.get("type")), str(d.get("name")), d.get("prefix"), d.get("inserted_at"), revealed
    )


def _signing_key(d: dict[str, Any]) -> SigningKey:
    return SigningKey(d["id"], d["algorithm"], d["status"], d.get("public_jwk"), d["created_at"], d["updated_at"])


class SupabaseKeys(SupabaseManagement):
    """Management API calls for keys, plus the project URL (REST, auth) they protect."""

    def __init__(self, base_url: str, access_token: str, project_ref: str, project_url: str, *, timeout: float = 30.0):
        super().__init__(base_url, access_token, project_ref, timeout=timeout)
        self.project_url = project_url.rstrip("/")
        self._project = httpx.Client(base_url=self.project_url, timeout=10.0)

    @classmethod
    def from_environment(cls, env: Environment) -> Self:
        from runbooks.secrets import secret

        return cls(
            env.endpoints.supabase_api,
            secret(env.credentials.supabase_access_token),
            env.supabase_project_ref,
            env.endpoints.supabase_project,
        )

    def close(self) -> None:
        super().close()
        self._project.close()

    # -- API keys ---------------------------------------------------------------------------------
    def api_keys(self, *, reveal: bool = False) -> list[ApiKey]:
        data = self.request(
            "GET", f"{self.project_path}/api-keys", operation="list API keys", params={"reveal": str(reveal).lower()}
        )
        return [_api_key(d) for d in data or []]

    def find_api_key(self, value: str) -> ApiKey | None:
        """The API key whose value is ``value`` (compared on revealed values), or None."""
        return next((k for k in self.api_keys(reveal=True) if k.value == value), None)

    def create_api_key(self, kind: str, name: str, description: str | None = None) -> ApiKey:
        body: dict[str, Any] = {"type": kind, "name": name}
        if description:
            body["description"] = description
        data = self.request(
            "POST",
            f"{self.project_path}/api-keys",
            operation=f"create {kind} API key",
            params={"reveal": "true"},
            json=body,
        )
        key = _api_key(data)
        if key.value is None:
            raise ProviderError(self.name, f"create {kind} API key", "the response did not reveal the new key")
        return key

    def delete_api_key(self, key_id: str, *, reason: str = "rotating_key") -> None:
        self.request(
            "DELETE",
            f"{self.project_path}/api-keys/{key_id}",
            operation=f"delete API key {key_id}",
            params={"reason": reason, "was_compromised": "false"},
        )

    def project_accepts(self, value: str) -> tuple[bool, int]:
        """Does the project's REST API accept this API key? (accepted, HTTP status)."""
        try:
            r = self._project.get("/rest/v1/", headers={"apikey": value})
        except httpx.HTTPError as e:
            raise ProviderError(self.name, "call the project's REST API", type(e).__name__) from e
        return r.status_code < 400, r.status_code

    # -- JWT signing keys -------------------------------------------------------------------------
    @property
    def _signing(self) -> str:
        return f"{self.project_path}/config/auth/signing-keys"

    def signing_keys(self) -> list[SigningKey]:
        data = self.request("GET", self._signing, operation="list signing keys")
        return [_signing_key(d) for d in (data or {}).get("keys", [])]

    def create_signing_key(self, algorithm: str = "ES256", status: str = "standby") -> SigningKey:
        return _signing_key(
            self.request(
                "POST", self._signing, operation="create signing key", json={"algorithm": algorithm, "status": status}
            )
        )

    def set_signing_key_status(self, key_id: str, status: str) -> SigningKey:
        return _signing_key(
            self.request(
                "PATCH", f"{self._signing}/{key_id}", operation=f"set signing key {status}", json={"status": status}
            )
        )

    # -- the project's auth -----------------------------------------------------------------------
    @property
    def jwks_url(self) -> str:
        return f"{self.project_url}/auth/v1/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        try:
            r = self._project.get("/auth/v1/.well-known/jwks.json")
            r.raise_for_status()
        except httpx.HTTPError as e:
            raise ProviderError(self.name, "fetch JWKS", type(e).__name__) from e
        return dict(r.json())

    def password_token(self, email: str, password: str, publishable_key: str) -> str:
        """An access token for ``email`` from the project's token endpoint (registered for redaction)."""
        try:
            r = self._project.post(
                "/auth/v1/token",
                params={"grant_type": "password"},
                headers={"apikey": publishable_key},
                json={"email": email, "password": password},
            )
        except httpx.HTTPError as e:
            raise ProviderError(self.name, "sign in (token endpoint)", type(e).__name__) from e
        if r.status_code >= 400:
            raise ProviderError(self.name, "sign in (token endpoint)", redact.cut(r.text, 200), status=r.status_code)
        return protect(str(r.json()["access_token"]), "supabase:access-token")
