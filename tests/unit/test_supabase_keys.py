"""Supabase twin keys and auth routers: API keys, signing keys, JWKS, token endpoint; shapes vs the OpenAPI doc."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from test_render_harness import PROJECT_REF, supabase_keys_app

SPEC = Path(__file__).resolve().parents[1] / "data" / "supabase-management-api.openapi.json"  # tests/data/README.md
BASE = f"/v1/projects/{PROJECT_REF}"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC.read_text()))


def validate(spec: dict[str, Any], schema_name: str, instance: Any, *, array: bool = False) -> None:
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"type": "array", "items": ref} if array else ref
    OAS30Validator({**schema, "components": spec["components"]}).validate(instance)


def spec_operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The spec's operation for ``method`` on a concrete ``path`` (templated segments match any value)."""
    parts = path.strip("/").split("/")
    for template, ops in spec["paths"].items():
        tparts = template.strip("/").split("/")
        same = len(tparts) == len(parts) and all(
            t == p or t.startswith("{") for t, p in zip(tparts, parts, strict=True)
        )
        if same and method.lower() in ops:
            return dict(ops[method.lower()])
    raise AssertionError(f"{method} {path} is not an operation of the Management API")


def validate_request(spec: dict[str, Any], request: httpx.Request) -> None:
    """A request as sent on the wire against its operation: declared query parameters, JSON body schema."""
    op = spec_operation(spec, request.method, request.url.path)
    params = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
    for name, value in request.url.params.multi_items():
        assert name in params, f"{request.method} {request.url.path}: undeclared query parameter {name}"
        schema = params[name].get("schema", {})
        decoded: Any = {"true": True, "false": False}.get(value, value) if schema.get("type") == "boolean" else value
        OAS30Validator({**schema, "components": spec["components"]}).validate(decoded)
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if request.content:
        assert body is not None, f"{request.method} {request.url.path} takes no body"
        OAS30Validator({**body["schema"], "components": spec["components"]}).validate(json.loads(request.content))
    else:
        assert body is None or not op["requestBody"].get("required"), f"{request.method}: body required"


def test_requests_the_provider_sends_follow_the_spec(spec: dict[str, Any], tmp_path: Path) -> None:
    """Drive providers/supabase_keys.py against the twin through a transport that captures every request
    it really sends, and validate those requests (query parameters, bodies) against the OpenAPI document."""
    from runbooks.providers.supabase_keys import SupabaseKeys

    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "secrets" / "supabase_access_token").write_text("sbp_test_token_0123456789")
    twin = TestClient(supabase_keys_app(tmp_path, 0))
    sent: list[httpx.Request] = []

    def forward(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        r = twin.request(
            request.method,
            request.url.path,
            params=list(request.url.params.multi_items()),
            content=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")},
        )
        return httpx.Response(r.status_code, content=r.content, headers={"content-type": "application/json"})

    keys = SupabaseKeys("http://management.invalid", "sbp_test_token_0123456789", PROJECT_REF, "http://p.invalid")
    keys._http = httpx.Client(  # the provider's own request code, over a capturing transport
        base_url="http://management.invalid",
        headers=dict(keys._http.headers),
        transport=httpx.MockTransport(forward),
    )
    created = keys.create_api_key("secret", "rotated_20261127120000", "issued by rotate-keys")
    assert any(k.id == created.id for k in keys.api_keys(reveal=True))
    keys.api_keys()
    keys.delete_api_key(created.id)
    standby = keys.create_signing_key("ES256", "standby")
    keys.signing_keys()
    keys.set_signing_key_status(standby.id, "in_use")
    keys.close()

    seen = {(r.method, r.url.path.rsplit("/", 1)[0] if r.method in ("DELETE", "PATCH") else r.url.path) for r in sent}
    assert seen == {
        ("POST", f"{BASE}/api-keys"),
        ("GET", f"{BASE}/api-keys"),
        ("DELETE", f"{BASE}/api-keys"),
        ("POST", f"{BASE}/config/auth/signing-keys"),
        ("GET", f"{BASE}/config/auth/signing-keys"),
        ("PATCH", f"{BASE}/config/auth/signing-keys"),
    }
    for request in sent:
        validate_request(spec, request)
    # the validation can fail: a body or a parameter the spec does not allow is caught
    bad_body = httpx.Request("PATCH", f"http://x{BASE}/config/auth/signing-keys/k1", json={"status": "gone"})
    with pytest.raises(ValidationError):
        validate_request(spec, bad_body)
    with pytest.raises(AssertionError):
        validate_request(spec, httpx.Request("GET", f"http://x{BASE}/api-keys", params={"secret": "1"}))


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "secrets" / "supabase_access_token").write_text("sbp_test_token_0123456789")
    c = TestClient(supabase_keys_app(tmp_path, 0))
    c.headers["Authorization"] = "Bearer sbp_test_token_0123456789"
    c.root = tmp_path  # type: ignore[attr-defined]
    return c


def secret_file(client: TestClient, name: str) -> str:
    return (client.root / "secrets" / name).read_text()  # type: ignore[attr-defined]


# -- API keys -------------------------------------------------------------------------------------
def test_start_up_creates_one_publishable_and_one_secret_key(client: TestClient, spec: dict[str, Any]) -> None:
    r = client.get(f"{BASE}/api-keys", params={"reveal": "true"})
    assert r.status_code == 200
    validate(spec, "ApiKeyResponse", r.json(), array=True)
    by_type = {k["type"]: k for k in r.json()}
    assert set(by_type) == {"publishable", "secret"}
    assert by_type["secret"]["api_key"] == secret_file(client, "supabase_secret_key")
    assert by_type["publishable"]["api_key"] == secret_file(client, "supabase_publishable_key")


def test_secret_values_are_masked_unless_revealed(client: TestClient) -> None:
    secret = secret_file(client, "supabase_secret_key")
    listed = client.get(f"{BASE}/api-keys").json()
    assert secret not in json.dumps(listed)
    assert any(k["type"] == "secret" and k["api_key"].startswith("sb_secret_") for k in listed)


def test_management_api_needs_the_access_token_and_the_project(client: TestClient) -> None:
    assert client.get(f"{BASE}/api-keys", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(f"{BASE}/api-keys", headers={"Authorization": ""}).status_code == 401
    assert client.get("/v1/projects/otherprojectrefabcde/api-keys").status_code == 404


def test_create_get_update_delete_and_the_deleted_key_is_refused(client: TestClient, spec: dict[str, Any]) -> None:
    r = client.post(f"{BASE}/api-keys", params={"reveal": "true"}, json={"type": "secret", "name": "rotated_1"})
    assert r.status_code == 201
    created = r.json()
    validate(spec, "ApiKeyResponse", created)
    value = created["api_key"]
    assert value.startswith("sb_secret_")
    assert client.get("/rest/v1/", headers={"apikey": value}).status_code == 200
    got = client.get(f"{BASE}/api-keys/{created['id']}").json()
    assert got["name"] == "rotated_1" and value not in json.dumps(got)
    patched = client.patch(f"{BASE}/api-keys/{created['id']}", json={"description": "rotated"})
    assert patched.status_code == 200 and patched.json()["description"] == "rotated"
    deleted = client.delete(f"{BASE}/api-keys/{created['id']}", params={"reason": "rotating_key"})
    assert deleted.status_code == 200
    validate(spec, "ApiKeyResponse", deleted.json())
    assert client.get(f"{BASE}/api-keys/{created['id']}").status_code == 404
    refused = client.get("/rest/v1/", headers={"apikey": value})
    assert refused.status_code == 401 and refused.json() == {"message": "Invalid API key"}


def test_project_api_refuses_missing_or_unknown_keys(client: TestClient) -> None:
    assert client.get("/rest/v1/", headers={"Authorization": ""}).status_code == 401
    assert client.get("/rest/v1/", headers={"apikey": "sb_secret_unknown0000"}).status_code == 401
    assert (
        client.get("/rest/v1/", headers={"apikey": secret_file(client, "supabase_publishable_key")}).status_code == 200
    )


@pytest.mark.parametrize(
    "body",
    [
        {"type": "secret", "name": "Bad-Name"},
        {"type": "secret", "name": "abc"},
        {"type": "legacy", "name": "good_name"},
        {"name": "good_name"},
    ],
)
def test_invalid_create_bodies_are_refused(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post(f"{BASE}/api-keys", json=body).status_code == 400


# -- signing keys, JWKS, tokens -------------------------------------------------------------------
def token(client: TestClient) -> str:
    r = client.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": secret_file(client, "supabase_publishable_key")},
        json={"email": "runbook-probe@runspectral.com", "password": secret_file(client, "supabase_probe_password")},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def kids(client: TestClient) -> list[str]:
    return [k["kid"] for k in client.get("/auth/v1/.well-known/jwks.json").json()["keys"]]


def verify(client: TestClient, tok: str) -> dict[str, Any]:
    keys = {k["kid"]: k for k in client.get("/auth/v1/.well-known/jwks.json").json()["keys"]}
    kid = jwt.get_unverified_header(tok)["kid"]
    if kid not in keys:
        raise jwt.InvalidKeyError(f"{kid} is not in the JWKS")
    key = jwt.PyJWK(keys[kid])
    return jwt.decode(tok, key.key, algorithms=[key.algorithm_name], audience="authenticated")


def test_signing_key_rotation_lifecycle(client: TestClient, spec: dict[str, Any]) -> None:
    listed = client.get(f"{BASE}/config/auth/signing-keys").json()
    validate(spec, "SigningKeysResponse", listed)
    [first] = listed["keys"]
    assert first["status"] == "in_use"
    old_token = token(client)
    assert jwt.get_unverified_header(old_token)["kid"] == first["id"]

    r = client.post(f"{BASE}/config/auth/signing-keys", json={"algorithm": "ES256", "status": "standby"})
    assert r.status_code == 201
    standby = r.json()
    validate(spec, "SigningKeyResponse", standby)
    assert "d" not in standby["public_jwk"]  # never the private part
    assert standby["id"] in kids(client)  # published before it signs anything

    rotated = client.patch(f"{BASE}/config/auth/signing-keys/{standby['id']}", json={"status": "in_use"})
    assert rotated.status_code == 200 and rotated.json()["status"] == "in_use"
    statuses = {k["id"]: k["status"] for k in client.get(f"{BASE}/config/auth/signing-keys").json()["keys"]}
    assert statuses == {first["id"]: "previously_used", standby["id"]: "in_use"}

    new_token = token(client)
    assert jwt.get_unverified_header(new_token)["kid"] == standby["id"]
    assert verify(client, new_token)["email"] == "runbook-probe@runspectral.com"
    assert verify(client, old_token)["email"]  # the overlap: the previous key still validates

    revoked = client.patch(f"{BASE}/config/auth/signing-keys/{first['id']}", json={"status": "revoked"})
    assert revoked.status_code == 200
    validate(spec, "SigningKeyResponse", revoked.json())
    assert first["id"] not in kids(client)
    with pytest.raises(jwt.InvalidKeyError):
        verify(client, old_token)
    user = client.get(
        "/auth/v1/user",
        headers={"apikey": secret_file(client, "supabase_publishable_key"), "Authorization": f"Bearer {old_token}"},
    )
    assert user.status_code == 401
    assert client.delete(f"{BASE}/config/auth/signing-keys/{first['id']}").status_code == 200
    assert client.get(f"{BASE}/config/auth/signing-keys/{first['id']}").status_code == 404


@pytest.mark.parametrize(
    ("start", "target"),
    [("in_use", "revoked"), ("in_use", "standby"), ("standby", "revoked"), ("standby", "previously_used")],
)
def test_invalid_signing_key_transitions_are_refused(client: TestClient, start: str, target: str) -> None:
    keys = client.get(f"{BASE}/config/auth/signing-keys").json()["keys"]
    if start == "in_use":
        key_id = keys[0]["id"]
    else:
        key_id = client.post(f"{BASE}/config/auth/signing-keys", json={"algorithm": "ES256"}).json()["id"]
    r = client.patch(f"{BASE}/config/auth/signing-keys/{key_id}", json={"status": target})
    assert r.status_code == 400, r.text


def test_the_key_in_use_cannot_be_removed(client: TestClient) -> None:
    key_id = client.get(f"{BASE}/config/auth/signing-keys").json()["keys"][0]["id"]
    assert client.delete(f"{BASE}/config/auth/signing-keys/{key_id}").status_code == 400


def test_rs256_keys_sign_and_validate(client: TestClient) -> None:
    key = client.post(f"{BASE}/config/auth/signing-keys", json={"algorithm": "RS256", "status": "in_use"}).json()
    tok = token(client)
    assert jwt.get_unverified_header(tok) == {"alg": "RS256", "kid": key["id"], "typ": "JWT"}
    assert verify(client, tok)["role"] == "authenticated"
    assert client.post(f"{BASE}/config/auth/signing-keys", json={"algorithm": "HS256"}).status_code == 400


def test_tokens_live_for_the_configured_lifetime(client: TestClient) -> None:
    claims = jwt.decode(token(client), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 5
    assert abs(claims["iat"] - time.time()) < 5


def test_token_endpoint_refuses_bad_credentials(client: TestClient) -> None:
    pub = secret_file(client, "supabase_publishable_key")
    body = {"email": "runbook-probe@runspectral.com", "password": "wrong-password"}
    assert (
        client.post("/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": pub}, json=body).status_code
        == 400
    )
    body["password"] = secret_file(client, "supabase_probe_password")
    assert (
        client.post(
            "/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": "nope-nope-nope"}, json=body
        ).status_code
        == 401
    )
