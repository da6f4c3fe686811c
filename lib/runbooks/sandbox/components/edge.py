"""The edge component: Cloudflare API emulator + authoritative DNS + HTTPS endpoints, in one process.

``start`` writes two API tokens, the runbooks' admin token (secret ``cloudflare_api_token``) and the
application's runtime token ("spectral-runtime", secret ``cloudflare_runtime_token``, which the render
component puts in the env group), and spawns
``python -m runbooks.sandbox.edge``, which builds the zone from the sandbox inventory (records with
their posture, zone settings, Pages projects and custom domains), applies the faults, binds free
loopback ports and reports them in ``<root>/edge/ports.json``. ``provision`` publishes the endpoints
(``cloudflare_api``, ``dns_resolver``, ``ca_bundle``, ``https_overrides``) and ``cloudflare_account_id``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import dns.exception
import dns.message
import dns.query
import dns.rcode
import httpx

from runbooks.sandbox.component import Catcher, Component, ComponentState, FaultDeclaration, FaultSpec, SandboxContext
from runbooks.sandbox.edge.server import PORTS_FILE, STATE_DIR
from runbooks.sandbox.edge.world import FAULTS, hex_id

TOKEN_SECRET = "cloudflare_api_token"
#: the application's own Cloudflare token (a separate token: rotating it never touches the runbooks' one)
RUNTIME_TOKEN_SECRET = "cloudflare_runtime_token"
START_TIMEOUT_S = 60.0


def _ports(root: Path) -> dict[str, Any] | None:
    p = root / STATE_DIR / PORTS_FILE
    try:
        return dict(json.loads(p.read_text()))
    except (FileNotFoundError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


POSTURE = "check-dns-posture"
ZONE = "runspectral.com"
#: edge fault -> the check-dns-posture rows (``check@subject``) it fails
CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "api-proxied": (f"dns.proxied@api.{ZONE}", f"dns.resolution@api.{ZONE}", f"sse.unbuffered@api.{ZONE}"),
    "app-dns-only": (f"dns.proxied@app.{ZONE}", f"dns.resolution@app.{ZONE}"),
    "cert-expiring": (f"tls.expiry@app.{ZONE}",),
    "cert-wrong-name": (f"tls.name@ops.{ZONE}",),
    "ssl-flexible": (f"zone.ssl@{ZONE}",),
    "cookie-host-only": (f"cookie.session@app.{ZONE}", f"cookie.session@ops.{ZONE}"),
    "codex-no-function": (f"pages.function@codex.{ZONE}",),
}


class EdgeComponent(Component):
    name = "edge"
    #: a fault of the edge world without an entry in CAUGHT_BY stays a plain description (reported undeclared)
    faults: ClassVar[Mapping[str, FaultDeclaration]] = {
        fault: FaultSpec(text, (Catcher(POSTURE, checks=CAUGHT_BY[fault]),)) if fault in CAUGHT_BY else text
        for fault, text in FAULTS.items()
    }

    #: extra synthetic hostnames and added latency (the benchmark uses them; the twin does not)
    def __init__(self, *, generated: int = 0, latency_ms: float = 0.0, environment: str = "sandbox"):
        self.generated, self.latency_ms, self.environment = generated, latency_ms, environment

    def start(self, ctx: SandboxContext) -> ComponentState:
        state_dir = ctx.dir(STATE_DIR)
        token_file = ctx.secrets_dir / TOKEN_SECRET
        runtime_file = ctx.secrets_dir / RUNTIME_TOKEN_SECRET
        if not token_file.is_file() or not runtime_file.is_file():
            # new bootstrap tokens mean a new world: the old one only knows its own tokens
            (state_dir / "state.json").unlink(missing_ok=True)
            ctx.write_secret(TOKEN_SECRET, secrets.token_urlsafe(32))
            ctx.write_secret(RUNTIME_TOKEN_SECRET, secrets.token_urlsafe(32))
        (state_dir / PORTS_FILE).unlink(missing_ok=True)
        faults = sorted(f for f in ctx.faults if f in FAULTS)
        args = [
            "--root",
            str(ctx.root),
            "--host",
            ctx.host,
            "--token-file",
            str(token_file),
            "--runtime-token-file",
            str(runtime_file),
            "--faults",
            ",".join(faults),
            "--environment",
            self.environment,
            "--generated",
            str(self.generated),
            "--latency-ms",
            str(self.latency_ms),
        ]
        pid = ctx.spawn_python("edge", "runbooks.sandbox.edge", *args)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (ports := _ports(ctx.root)) is None:
            if not _pid_alive(pid) or time.monotonic() > deadline:
                log = ctx.logs_dir / "edge.log"
                tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
                raise RuntimeError(f"the edge process did not start (see {log}):\n{tail}")
            time.sleep(0.05)
        return self._state(ctx.host, ports, pid)

    @staticmethod
    def _state(host: str, ports: dict[str, Any], pid: int) -> ComponentState:
        return ComponentState(
            name="edge",
            address=f"http://{host}:{ports['api']}/client/v4",
            pids=[pid],
            extra={
                "dns": f"{host}:{ports['dns']}",
                "https": f"{host}:{ports['https']}",
                "ca_bundle": ports["ca"],
                "account_id": ports["account_id"],
                "names": ports["names"],
                "zone": ports["zone"],
            },
        )

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        try:
            r = httpx.get(state.address + "/ips", timeout=2.0)
            if r.status_code != 200 or not r.json().get("success"):
                return False, f"API /ips answered HTTP {r.status_code}"
            host, port = state.extra["dns"].rsplit(":", 1)
            answer = dns.query.udp(
                dns.message.make_query(state.extra["zone"], "SOA"), host, port=int(port), timeout=2.0
            )
            if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
                return False, f"DNS answered {dns.rcode.to_text(answer.rcode())}"
        except (httpx.HTTPError, OSError, ValueError, dns.exception.DNSException) as e:
            return False, f"edge not answering: {type(e).__name__}: {e}"
        return True, f"API {state.address}, DNS {state.extra['dns']}, HTTPS {state.extra['https']}"

    def provision(self, ctx: SandboxContext, state: ComponentState) -> None:
        https = state.extra["https"]
        ctx.merge_overlay(
            {
                "endpoints": {
                    "cloudflare_api": state.address,
                    "dns_resolver": state.extra["dns"],
                    "ca_bundle": state.extra["ca_bundle"],
                    "https_overrides": {name: https for name in state.extra["names"]},
                },
                "cloudflare_account_id": state.extra["account_id"],
                "vendor_ids": {"cloudflare_zone_id": hex_id("zone", state.extra["zone"])},
            }
        )
