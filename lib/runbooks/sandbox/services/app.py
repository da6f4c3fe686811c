"""One twin service process: configuration from the environment, a health endpoint, real Supabase calls
and a real verification of its Cloudflare token against the Cloudflare API twin."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runbooks.secrets import fingerprint

GENERATION = "SPECTRAL_GENERATION"
#: the Supabase keys a service uses, and how it uses them against the project's REST API
SUPABASE_KEYS = ("SUPABASE_SECRET_KEY", "SUPABASE_PUBLISHABLE_KEY")
#: the runtime's Cloudflare token, verified against the Cloudflare API (``CLOUDFLARE_API_URL``)
CLOUDFLARE_KEY = "CLOUDFLARE_API_TOKEN"


@dataclass
class ServiceConfig:
    name: str
    host: str
    port: int
    generation: str | None
    supabase_url: str | None
    cloudflare_url: str | None = None
    #: a git-built service's commit (Render's RENDER_GIT_COMMIT); None for an image-built one
    commit: str | None = None
    keys: dict[str, str] = field(repr=False, default_factory=dict)  #: key name -> value, as read at start-up
    started_at: float = field(default_factory=time.time)

    @classmethod
    def from_environ(cls, env: dict[str, str]) -> ServiceConfig:
        names = [n for n in env.get("TWIN_KEY_NAMES", "").split(",") if n]
        return cls(
            name=env.get("TWIN_SERVICE_NAME", "service"),
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT") or 0),
            generation=env.get(GENERATION),
            supabase_url=env.get("SUPABASE_URL"),
            cloudflare_url=env.get("CLOUDFLARE_API_URL") or None,
            commit=env.get("RENDER_GIT_COMMIT") or None,
            keys={n: env[n] for n in names if env.get(n)},
        )


def probe_supabase(url: str, key: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Use ``key`` against the project's REST API, like the service's real work would: (works, detail)."""
    req = urllib.request.Request(url.rstrip("/") + "/rest/v1/", headers={"apikey": key})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return True, f"HTTP {resp.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return False, f"unreachable: {type(e).__name__}"


def probe_cloudflare(api_url: str, token: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Verify ``token`` against the Cloudflare API (``GET /user/tokens/verify``): (works, detail)."""
    req = urllib.request.Request(
        api_url.rstrip("/") + "/user/tokens/verify", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return False, f"unreachable: {type(e).__name__}"
    except ValueError:
        return False, "not a JSON answer"
    status = (body.get("result") or {}).get("status")
    return (bool(body.get("success")) and status == "active"), f"HTTP 200, token {status}"


def health(cfg: ServiceConfig) -> tuple[int, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    for name in SUPABASE_KEYS:
        if name not in cfg.keys:
            continue
        if not cfg.supabase_url:
            checks[name] = {"ok": False, "detail": "SUPABASE_URL is not set"}
            continue
        ok, detail = probe_supabase(cfg.supabase_url, cfg.keys[name])
        checks[name] = {"ok": ok, "detail": detail}
    cloudflare: dict[str, dict[str, Any]] = {}
    if CLOUDFLARE_KEY in cfg.keys:
        if cfg.cloudflare_url:
            ok, detail = probe_cloudflare(cfg.cloudflare_url, cfg.keys[CLOUDFLARE_KEY])
            cloudflare[CLOUDFLARE_KEY] = {"ok": ok, "detail": detail}
        else:  # a twin without the edge (unit harnesses): nothing to verify against; not counted
            cloudflare[CLOUDFLARE_KEY] = {"ok": None, "detail": "not checked: CLOUDFLARE_API_URL is not set"}
    missing = [n for n in SUPABASE_KEYS if n not in cfg.keys]
    healthy = (
        not missing
        and all(c["ok"] for c in checks.values())
        and all(c["ok"] is not False for c in cloudflare.values())
        and cfg.generation is not None
    )
    body = {
        "service": cfg.name,
        "pid": os.getpid(),
        "started_at": cfg.started_at,
        "generation": cfg.generation,
        "commit": cfg.commit,
        "keys": {n: fingerprint(v) for n, v in sorted(cfg.keys.items())},
        "supabase": checks,
        "cloudflare": cloudflare,
        "missing": missing,
        "healthy": healthy,
    }
    return (200 if healthy else 503), body


def make_handler(cfg: ServiceConfig) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/healthz":
                code, body = health(cfg)
            else:
                code, body = 404, {"message": "not found"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


#: a background worker has no URL on Render: it reports its health as a log line starting with this marker
#: (docs/SERVICE_CONTRACT.md), read back through Render's logs API. The inventory's ``probes.heartbeat_marker``.
HEARTBEAT_MARKER = "spectral-health "


def heartbeat_line(cfg: ServiceConfig, marker: str = HEARTBEAT_MARKER) -> str:
    """One health line: the marker, then the health body as compact JSON (fingerprints, never values)."""
    _, body = health(cfg)
    return marker + json.dumps(body, separators=(",", ":"), sort_keys=True)


def run_worker(cfg: ServiceConfig, every: float, marker: str) -> None:
    """A background worker: no port; a health line on stdout at start and every ``every`` seconds."""
    stop = False

    def on_term(signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print(f"{cfg.name}: worker started, generation {cfg.generation}", flush=True)
    while not stop:
        print(heartbeat_line(cfg, marker), flush=True)
        deadline = time.monotonic() + every
        while not stop and time.monotonic() < deadline:
            time.sleep(0.05)


def main() -> None:
    env = dict(os.environ)
    cfg = ServiceConfig.from_environ(env)
    if env.get("TWIN_HEARTBEAT_SECONDS"):
        run_worker(cfg, float(env["TWIN_HEARTBEAT_SECONDS"]), env.get("TWIN_HEARTBEAT_MARKER", HEARTBEAT_MARKER))
        return
    server = ThreadingHTTPServer((cfg.host, cfg.port), make_handler(cfg))
    server.daemon_threads = True

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"{cfg.name}: serving on {cfg.host}:{cfg.port}, generation {cfg.generation}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
