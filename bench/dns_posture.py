"""Benchmark: the edge posture checks over 200 generated hostnames, concurrent vs sequential, in one run.

An edge twin serving the sandbox hostnames plus ``--hostnames`` generated ones (records, DNS answers,
certificates) is started on loopback, with ``--latency-ms`` added to every API, DNS and HTTP answer to
stand for a network round trip (loopback has none). The same checks then run once sequentially
(``max_workers=1``, the baseline) and once concurrently (``run_checks``'s default pool), and the
ratio of the two wall times is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from runbooks.checks import CheckFn, counts, run_checks
from runbooks.checks.dns_posture import build_checks
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import TlsClient
from runbooks.sandbox.edge.standalone import running_edge
from runbooks.sandbox.edge.world import generated_hostnames


def timed(checks: list[CheckFn], workers: int) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    results = run_checks(checks, max_workers=workers)
    return time.perf_counter() - start, counts(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hostnames", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=10.0, help="added per API/DNS/HTTP answer by the twin")
    ap.add_argument("--workers", type=int, default=16)
    a = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-dns-posture-") as tmp,
        running_edge(Path(tmp), generated=a.hostnames, latency_ms=a.latency_ms) as edge,
    ):
        env = edge.environment()
        hosts = generated_hostnames(env.zone, a.hostnames)
        ep = env.endpoints
        cf = CloudflareProvider(ep.cloudflare_api, edge.token, account_id=env.cloudflare_account_id, zone=env.zone)
        resolver = DnsResolver(ep.dns_resolver)
        tls = TlsClient(ca_bundle=ep.ca_bundle, overrides=ep.https_overrides)

        def checks() -> list[CheckFn]:
            return build_checks(env, cf, resolver, tls, hostnames=hosts)

        n = len(checks())
        timed(checks()[:8], 1)  # warm-up: zone lookup, connection setup
        seq_s, seq_counts = timed(checks(), 1)
        con_s, con_counts = timed(checks(), a.workers)
    if seq_counts != con_counts or seq_counts["FAIL"]:
        raise SystemExit(f"the two runs disagree or fail: sequential {seq_counts}, concurrent {con_counts}")
    print(f"edge posture checks: {a.hostnames} hostnames, {n} checks, +{a.latency_ms:g} ms per answer")
    print(f"  sequential (baseline): {seq_s:7.2f} s  {seq_counts}")
    print(f"  concurrent ({a.workers} workers): {con_s:7.2f} s  {con_counts}")
    print(f"  speed-up: {seq_s / con_s:.1f}x (sequential / concurrent)")


if __name__ == "__main__":
    main()
