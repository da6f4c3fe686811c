"""The Cloudflare twin's API tokens: the seeded runtime token, create / get / delete (and a deleted token is
refused at once), the API Tokens permission, error envelopes; and the provider's token calls."""

from __future__ import annotations

from collections.abc import Iterator

import cloudflare
import httpx
import pytest

from runbooks.providers.base import ProviderError
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("cf-tokens")) as e:
        yield e


def sdk(e: RunningEdge, token: str | None = None) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(api_token=token or e.token, base_url=e.state.address, max_retries=0)


def provider(e: RunningEdge, token: str | None = None) -> CloudflareProvider:
    env = e.environment()
    return CloudflareProvider(
        env.endpoints.cloudflare_api,
        token or e.token,
        account_id=env.cloudflare_account_id,
        zone=env.zone,
        max_retries=0,
    )


def runtime_token(e: RunningEdge) -> str:
    return e.ctx.read_secret("cloudflare_runtime_token")


def verify_raw(e: RunningEdge, token: str) -> httpx.Response:
    return httpx.get(f"{e.state.address}/user/tokens/verify", headers={"Authorization": f"Bearer {token}"})


def policy(zone_id: str) -> dict[str, object]:
    return {
        "effect": "allow",
        "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f"}],
        "resources": {f"com.cloudflare.api.account.zone.{zone_id}": "*"},
    }


def test_the_twin_seeds_a_separate_runtime_token(edge: RunningEdge) -> None:
    runtime = runtime_token(edge)
    assert runtime != edge.token
    rt = sdk(edge, runtime).user.tokens.verify()
    admin = sdk(edge).user.tokens.verify()
    assert rt is not None and admin is not None and rt.id != admin.id and rt.status == "active"
    t = sdk(edge).user.tokens.get(rt.id)
    assert t is not None and t.name == "spectral-runtime"
    assert t.policies and {g.name for g in t.policies[0].permission_groups} == {"Zone Read", "DNS Read"}
    assert (
        "value"
        not in httpx.get(
            f"{edge.state.address}/user/tokens/{rt.id}", headers={"Authorization": f"Bearer {edge.token}"}
        ).json()["result"]
    )


def test_create_get_delete_and_the_deleted_token_is_refused(edge: RunningEdge) -> None:
    c = sdk(edge)
    zid = next(iter(c.zones.list(name="runspectral.com"))).id
    created = c.user.tokens.create(name="twin-test", policies=[policy(zid)])  # type: ignore[list-item]
    assert created is not None and created.id and created.value and created.status == "active"
    assert created.policies and created.policies[0].resources == {f"com.cloudflare.api.account.zone.{zid}": "*"}
    value = str(created.value)
    # the new token works, and so does the admin token (no roll)
    verified = sdk(edge, value).user.tokens.verify()
    assert verified is not None and verified.id == created.id
    assert list(sdk(edge, value).zones.list(name="runspectral.com"))
    got = c.user.tokens.get(created.id)
    assert got is not None and got.name == "twin-test" and "value" not in got.model_dump()
    deleted = c.user.tokens.delete(created.id)
    assert deleted is not None and deleted.id == created.id
    # refused at once, everywhere
    r = verify_raw(edge, value)
    assert r.status_code == 401 and r.json()["success"] is False and r.json()["errors"][0]["code"] == 1000
    with pytest.raises(cloudflare.PermissionDeniedError):
        list(sdk(edge, value).zones.list())
    with pytest.raises(cloudflare.NotFoundError) as nf:
        c.user.tokens.get(created.id)
    assert nf.value.body["errors"][0] == {"code": 1003, "message": "Token not found"}  # type: ignore[index]
    with pytest.raises(cloudflare.NotFoundError):
        c.user.tokens.delete(created.id)
    assert verify_raw(edge, edge.token).status_code == 200


def test_only_a_token_with_the_api_tokens_permission_manages_tokens(edge: RunningEdge) -> None:
    rt = sdk(edge, runtime_token(edge))
    with pytest.raises(cloudflare.PermissionDeniedError) as denied:
        rt.user.tokens.create(name="escalate", policies=[policy("z")])  # type: ignore[list-item]
    assert denied.value.body["errors"][0]["code"] == 9109  # type: ignore[index]
    admin = sdk(edge).user.tokens.verify()
    assert admin is not None
    with pytest.raises(cloudflare.PermissionDeniedError):
        rt.user.tokens.delete(admin.id)
    with pytest.raises(cloudflare.PermissionDeniedError):
        rt.user.tokens.value.update(admin.id)
    assert verify_raw(edge, edge.token).status_code == 200


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"policies": []}, "name"),
        ({"name": "x"}, "policies"),
        (
            {
                "name": "x",
                "policies": [{"effect": "maybe", "permission_groups": [{"id": "a"}], "resources": {"r": "*"}}],
            },
            "effect",
        ),
        (
            {"name": "x", "policies": [{"effect": "allow", "permission_groups": [], "resources": {"r": "*"}}]},
            "permission_groups",
        ),
        (
            {"name": "x", "policies": [{"effect": "allow", "permission_groups": [{"id": "a"}], "resources": {}}]},
            "resources",
        ),
    ],
)
def test_create_refuses_bad_bodies_with_the_error_envelope(
    edge: RunningEdge, body: dict[str, object], where: str
) -> None:
    r = httpx.post(f"{edge.state.address}/user/tokens", json=body, headers={"Authorization": f"Bearer {edge.token}"})
    assert r.status_code == 400
    j = r.json()
    assert j["success"] is False and j["result"] is None and j["errors"][0]["code"] == 1004
    assert where in j["errors"][0]["message"]


def test_missing_or_malformed_authorization(edge: RunningEdge) -> None:
    r = httpx.post(f"{edge.state.address}/user/tokens", json={"name": "x", "policies": []})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 6003
    r = httpx.delete(f"{edge.state.address}/user/tokens/abc", headers={"Authorization": "Basic abc"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 6111


def test_provider_create_find_get_delete(edge: RunningEdge) -> None:
    cf = provider(edge)
    rt = provider(edge, runtime_token(edge)).verify_token()
    current = cf.get_token(rt.id)
    assert current is not None and current.name == "spectral-runtime" and current.policies
    new = cf.create_token("spectral-runtime (provider-test)", current.policies)
    assert "value" not in repr(new) and new.info.policies == current.policies
    assert [t.id for t in cf.find_tokens("spectral-runtime (provider-test)")] == [new.info.id]
    assert provider(edge, new.value).verify_token().id == new.info.id
    cf.delete_token(new.info.id)
    assert cf.get_token(new.info.id) is None and cf.find_tokens("spectral-runtime (provider-test)") == []
    with pytest.raises(ProviderError) as err:
        provider(edge, new.value).verify_token()
    assert err.value.status == 401
    with pytest.raises(ProviderError, match="delete API token"):
        cf.delete_token(new.info.id)
    with pytest.raises(ProviderError) as denied:
        provider(edge, runtime_token(edge)).create_token("nope", current.policies)
    assert denied.value.status == 403
