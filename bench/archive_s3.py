"""Benchmark: the archive of record in the twin's S3 against the local store.

1. Commit overhead: the same run (a synthetic manifest and a 50 kB notebook) committed N times to a local
   archive and to ``s3://spectral-audit/<prefix>`` through the ``audit-writer`` credential, interleaved;
   prints the medians and the difference (target: at most +0.5 s per run).
2. ``runs verify`` of an S3 archive of R runs (default 10,000): the bucket is filled directly (objects and a
   valid chain, written in parallel), then a fresh store verifies it twice: the first verification reads
   every object and seals what it verified, the second (the steady state of a scheduled verify) checks the
   sealed runs by version id and reads only what came since (target: under 60 s). ``--deep-target`` also
   holds the first one to the target.

Brings an S3-only twin up under a temporary directory and down at the end. Exits 1 if a target is missed.
Usage: python bench/archive_s3.py [--commits 30] [--runs 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbooks.archive.canonical import sha256_hex
from runbooks.archive.ledger import GENESIS, LedgerEntry
from runbooks.archive.samples import sample_manifest
from runbooks.archive.stores import ArchiveStore, LocalStore, open_store
from runbooks.sandbox.fixture import running_sandbox

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "pad": "' + b"x" * 50_000 + b'"}'
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def commit_once(store: ArchiveStore) -> float:
    manifest = sample_manifest("check-dns-posture")
    t = time.perf_counter()
    out = store.commit(manifest, {"notebook.ipynb": NOTEBOOK})
    assert not out.spooled, out
    return time.perf_counter() - t


def fill(store: ArchiveStore, runs: int) -> float:
    """Write ``runs`` runs and their chained ledger entries straight into the bucket, in parallel."""
    from runbooks.archive.s3store import S3Store, entry_key, run_key, seal

    assert isinstance(store, S3Store)
    objects: list[tuple[str, bytes]] = []
    prev = GENESIS
    for i in range(runs):
        m = sample_manifest("check-dns-posture", started_at=T0 + timedelta(minutes=i))
        _final, body, rel = seal(m, {"notebook.ipynb": NOTEBOOK[:2000]})
        entry = LedgerEntry.make(i + 1, m.run_id, rel, sha256_hex(body), prev)
        prev = entry.hash
        objects += [
            (run_key(rel, "notebook.ipynb"), NOTEBOOK[:2000]),
            (run_key(rel, "run.json"), body),
            (entry_key(entry.seq), entry.line()),
        ]
    t = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda kv: store.objects.create_if_absent(*kv), objects))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=30)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--deep-target", action="store_true", help="hold the first (full) verify to 60 s too")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-archive-s3-") as tmp:
        base = Path(tmp)
        os.environ["RUNBOOKS_SPOOL"] = str(base / "spool")
        os.environ["RUNBOOKS_CACHE"] = str(base / "cache")
        with running_sandbox(base / "twin", components=["s3"], set_env=True):
            local = LocalStore(base / "runs")
            s3 = open_store(f"s3://spectral-audit/bench-commit-{os.getpid()}", "sandbox")
            commit_once(local), commit_once(s3)  # warm-up: imports, connections, first listing
            t_local, t_s3 = [], []
            for _ in range(args.commits):
                t_local.append(commit_once(local))
                t_s3.append(commit_once(s3))
            ml, ms = statistics.median(t_local), statistics.median(t_s3)
            print(f"commit, median of {args.commits}: local {ml * 1000:.1f} ms, S3 {ms * 1000:.1f} ms, "
                  f"overhead {(ms - ml) * 1000:+.1f} ms per run (target: at most +500 ms)")  # fmt: skip
            ok &= ms - ml <= 0.5

            big = open_store(f"s3://spectral-audit/bench-verify-{os.getpid()}", "sandbox")
            filled = fill(big, args.runs)
            print(f"filled {args.runs} runs ({3 * args.runs} objects) in {filled:.1f} s")
            t = time.perf_counter()
            listed = sum(1 for _ in big.objects.list_keys(""))  # type: ignore[attr-defined]
            print(f"one ListObjectsV2 listing of the prefix ({listed} objects): {time.perf_counter() - t:.1f} s")
            for label in ("first verify (reads every object, then seals)", "verify after a seal"):
                fresh = open_store(big.url, "sandbox")
                t = time.perf_counter()
                report = fresh.verify()
                took = time.perf_counter() - t
                print(f"{label}: {report.runs_checked} runs in {took:.1f} s, ok={report.ok} (target: under 60 s)")
                ok &= report.ok and report.runs_checked == args.runs
                if label.startswith("verify after") or args.deep_target:
                    ok &= took < 60
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
