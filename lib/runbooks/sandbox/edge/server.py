"""The edge process: build (or reload) the world, then serve the API, DNS and HTTPS until SIGTERM.

Every listener binds a free loopback port; once all are up, the process writes
``<root>/edge/ports.json`` (``{"api": P, "dns": P, "https": P, "pid": N}``), which the component waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from runbooks.sandbox.edge.ca import TwinCA
from runbooks.sandbox.edge.dns_server import DnsServer
from runbooks.sandbox.edge.https import CertStore
from runbooks.sandbox.edge.https import create_app as create_edge_app
from runbooks.sandbox.edge.jwks_gate import JwksGate
from runbooks.sandbox.edge.world import FAULTS, EdgeWorld, generated_hostnames, inventory_hostnames
from runbooks.sandbox.emulators.cloudflare.app import create_app as create_api_app

PORTS_FILE = "ports.json"
STATE_DIR = "edge"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the edge process (several servers share it)."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(host: str) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((host, 0))
    s.listen(512)
    s.setblocking(False)
    return s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="runbooks.sandbox.edge", description=__doc__)
    p.add_argument("--root", type=Path, required=True, help="the sandbox root")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--faults", default="", help=f"comma-separated, of: {', '.join(FAULTS)}")
    p.add_argument(
        "--token-file",
        type=Path,
        required=True,
        help="file holding the bootstrap API token (read once, when the world is first built)",
    )
    p.add_argument(
        "--runtime-token-file",
        type=Path,
        default=None,
        help="file holding the application's runtime API token (read once, when the world is first built)",
    )
    p.add_argument("--environment", default="sandbox", help="inventory whose hostnames the zone serves")
    p.add_argument("--generated", type=int, default=0, help="extra synthetic hostnames (benchmark)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every API, DNS and HTTPS answer")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    state_dir = (args.root / STATE_DIR).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    faults = frozenset(f for f in args.faults.split(",") if f)
    unknown = faults - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown edge fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")

    world = EdgeWorld(state_dir / "state.json")
    if not world.built:
        zone, cookie_domain, hostnames = inventory_hostnames(args.environment)
        world.build(
            zone,
            hostnames + generated_hostnames(zone, args.generated),
            faults,
            args.token_file.read_text().strip(),
            cookie_domain=cookie_domain,
            runtime_token=args.runtime_token_file.read_text().strip() if args.runtime_token_file else None,
        )
    world.set_latency_ms(args.latency_ms)

    ca = TwinCA.load_or_create(state_dir)
    certs = CertStore(ca, state_dir / "certs")
    certs.build(world)

    dns = DnsServer(world, args.host)
    dns.start()

    api_sock, https_sock = _listen(args.host), _listen(args.host)
    api = _Server(uvicorn.Config(create_api_app(world), log_level="warning", access_log=False))
    cert_file, key_file = certs.default_files
    https_cfg = uvicorn.Config(
        create_edge_app(world, JwksGate(args.root.resolve())),
        log_level="warning",
        access_log=False,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
    )
    https_cfg.load()
    assert https_cfg.ssl is not None
    https_cfg.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    https_cfg.ssl.sni_callback = certs.sni_callback
    https = _Server(https_cfg)

    loop = asyncio.get_running_loop()

    def stop(*_: Any) -> None:
        api.should_exit = https.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)

    tasks = [asyncio.create_task(api.serve(sockets=[api_sock])), asyncio.create_task(https.serve(sockets=[https_sock]))]
    while not (api.started and https.started):
        if any(t.done() for t in tasks):
            for t in tasks:
                if t.done() and (error := t.exception()):
                    raise error
            raise SystemExit("edge: a server stopped while starting")
        await asyncio.sleep(0.02)
    ports = {
        "api": api_sock.getsockname()[1],
        "dns": dns.port,
        "https": https_sock.getsockname()[1],
        "pid": os.getpid(),
        "ca": str(state_dir / "ca.pem"),
        "account_id": world.account_id,
        "zone": world.zone_names()[0],
        "names": sorted(
            {*world.hostnames(), *world.data["origins"], *(p["subdomain"] for p in world.data["pages"].values())}
        ),
    }
    tmp = state_dir / (PORTS_FILE + ".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.replace(state_dir / PORTS_FILE)
    try:
        await asyncio.gather(*tasks)
    finally:
        dns.stop()
        (state_dir / PORTS_FILE).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(parse_args(argv)))
