"""Twin service process logic: configuration from the environment and the health report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runbooks.sandbox.services.app import ServiceConfig, health
from runbooks.secrets import fingerprint

GOOD = {"sb_" + "secret_good_value_0123456789", "sb_publishable_good_value_0123"}


@pytest.fixture(scope="module")
def supabase() -> Iterator[str]:
    """A project REST API that accepts only the GOOD keys."""

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/rest/v1/" and self.headers.get("apikey") in GOOD
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def config(url: str | None, **keys: str) -> ServiceConfig:
    env = {
        "PORT": "1",
        "TWIN_SERVICE_NAME": "api",
        "SPECTRAL_GENERATION": "g1",
        "TWIN_KEY_NAMES": "SUPABASE_SECRET_KEY,SUPABASE_PUBLISHABLE_KEY,OAUTH_CLIENT_SECRET",
        "OTHER": "not-a-key",
        **keys,
    }
    if url:
        env["SUPABASE_URL"] = url
    return ServiceConfig.from_environ(env)


def good_keys() -> dict[str, str]:
    return {
        "SUPABASE_SECRET_KEY": "sb_" + "secret_good_value_0123456789",
        "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_good_value_0123",
        "OAUTH_CLIENT_SECRET": "oauth_value_0123456789",
    }


def test_config_holds_only_the_named_keys(supabase: str) -> None:
    cfg = config(supabase, **good_keys())
    assert set(cfg.keys) == {"SUPABASE_SECRET_KEY", "SUPABASE_PUBLISHABLE_KEY", "OAUTH_CLIENT_SECRET"}
    assert cfg.generation == "g1" and cfg.name == "api"
    assert "sb_secret" not in repr(cfg)


def test_healthy_when_every_supabase_key_works(supabase: str) -> None:
    code, body = health(config(supabase, **good_keys()))
    assert code == 200 and body["healthy"] is True
    assert body["keys"] == {k: fingerprint(v) for k, v in good_keys().items()}
    assert not any(v in str(body) for v in good_keys().values())


def test_unhealthy_when_a_supabase_key_is_refused(supabase: str) -> None:
    keys = {**good_keys(), "SUPABASE_SECRET_KEY": "sb_" + "secret_deleted_key_000000"}
    code, body = health(config(supabase, **keys))
    assert code == 503 and body["healthy"] is False
    assert body["supabase"]["SUPABASE_SECRET_KEY"] == {"ok": False, "detail": "HTTP 401"}
    assert body["supabase"]["SUPABASE_PUBLISHABLE_KEY"]["ok"] is True


def test_unhealthy_when_a_supabase_key_is_missing(supabase: str) -> None:
    keys = good_keys()
    del keys["SUPABASE_PUBLISHABLE_KEY"]
    code, body = health(config(supabase, **keys))
    assert code == 503 and body["missing"] == ["SUPABASE_PUBLISHABLE_KEY"]


def test_unhealthy_when_supabase_is_unreachable() -> None:
    code, body = health(config("http://127.0.0.1:9", **good_keys()))
    assert code == 503 and body["supabase"]["SUPABASE_SECRET_KEY"]["detail"].startswith("unreachable")


def test_unhealthy_without_supabase_url() -> None:
    code, body = health(config(None, **good_keys()))
    assert code == 503 and body["supabase"]["SUPABASE_SECRET_KEY"]["detail"] == "SUPABASE_URL is not set"


@pytest.fixture(scope="module")
def cloudflare_api() -> Iterator[str]:
    """A Cloudflare API whose /user/tokens/verify accepts only CF_GOOD."""

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("authorization")
            ok = self.path == "/client/v4/user/tokens/verify" and auth == f"Bearer {CF_GOOD}"
            body = (
                b'{"success": true, "errors": [], "result": {"id": "t1", "status": "active"}}'
                if ok
                else b'{"success": false, "errors": [{"code": 1000, "message": "Invalid API Token"}]}'
            )
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    server.shutdown()


CF_GOOD = "cf_runtime_good_value_0123456789"


def cf_config(supabase_url: str, cf_url: str | None, token: str) -> ServiceConfig:
    env = {
        "PORT": "1",
        "SPECTRAL_GENERATION": "g1",
        "SUPABASE_URL": supabase_url,
        "TWIN_KEY_NAMES": "SUPABASE_SECRET_KEY,SUPABASE_PUBLISHABLE_KEY,CLOUDFLARE_API_TOKEN",
        **good_keys(),
        "CLOUDFLARE_API_TOKEN": token,
    }
    if cf_url:
        env["CLOUDFLARE_API_URL"] = cf_url
    return ServiceConfig.from_environ(env)


def test_the_cloudflare_token_is_verified_against_the_api(supabase: str, cloudflare_api: str) -> None:
    code, body = health(cf_config(supabase, cloudflare_api, CF_GOOD))
    assert code == 200
    assert body["cloudflare"]["CLOUDFLARE_API_TOKEN"] == {"ok": True, "detail": "HTTP 200, token active"}
    assert body["keys"]["CLOUDFLARE_API_TOKEN"] == fingerprint(CF_GOOD) and CF_GOOD not in str(body)


def test_a_refused_cloudflare_token_makes_the_service_unhealthy(supabase: str, cloudflare_api: str) -> None:
    code, body = health(cf_config(supabase, cloudflare_api, "cf_deleted_token_value_000000"))
    assert code == 503 and body["cloudflare"]["CLOUDFLARE_API_TOKEN"] == {"ok": False, "detail": "HTTP 401"}


def test_without_a_cloudflare_url_the_token_is_not_checked(supabase: str) -> None:
    code, body = health(cf_config(supabase, None, "cfrt_placeholder_0123456789"))
    assert code == 200 and body["cloudflare"]["CLOUDFLARE_API_TOKEN"]["ok"] is None
