"""Benchmark: `runbooks runs list` over a 10,000-run index, against the same command on an empty archive.

Both are run as real subprocesses, interleaved, so the ratio isolates the cost of the index query and the
table from interpreter start-up. Prints the medians and the ratio; exits 1 if the 10k list takes 1 s or more.
Usage: python bench/archive_index.py [--runs 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbooks.archive.index import RunIndex, row_values
from runbooks.archive.manifest import RunStatus
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(root: Path, n: int) -> float:
    procs = ["check-dns-posture", "restore-db", "rotate-keys", "backup-now", "flip-region"]
    statuses = list(RunStatus)
    rows = []
    for i in range(n):
        m = sample_manifest(
            procs[i % len(procs)],
            status=statuses[i % len(statuses)],
            environment=("production", "staging", "sandbox")[i % 3],
            started_at=T0 + timedelta(minutes=7 * i),
        )
        rows.append(row_values(m, f"{m.started_at:%Y/%m/%d}/{m.run_id}", "0" * 64))
    t = time.perf_counter()
    RunIndex(root / "index.sqlite").insert_many(rows)
    return time.perf_counter() - t


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "runbooks.cli.main", "runs", "list"]
    with tempfile.TemporaryDirectory() as tmp:
        full, empty = Path(tmp, "full"), Path(tmp, "empty")
        full.mkdir()
        empty.mkdir()
        load = build(full, args.runs)
        Archive(empty).index.insert_many([])
        filters = ["--procedure", "restore-db", "--status", "failed", "--since", "2026-03-01"]
        variants = {
            "empty archive (baseline)": [*exe, "--archive", str(empty)],
            f"{args.runs} runs, newest 50": [*exe, "--archive", str(full)],
            f"{args.runs} runs, filtered": [*exe, "--archive", str(full), *filters],
            f"{args.runs} runs, all as JSON": [*exe, "--archive", str(full), "--limit", "0", "--json"],
        }
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeat):  # interleaved, so machine load hits every variant alike
            for name, cmd in variants.items():
                samples[name].append(timed(cmd))
    base = statistics.median(samples["empty archive (baseline)"])
    print(f"bulk-loaded {args.runs} index rows in {load:.2f}s")
    worst = 0.0
    for name, values in samples.items():
        med = statistics.median(values)
        if name != "empty archive (baseline)":
            worst = max(worst, med)
        print(f"{name:32s} median {med * 1000:7.1f} ms   ratio {med / base:5.2f}")
    verdict = "OK" if worst < 1.0 else "TOO SLOW"
    print(f"{verdict}: slowest list over {args.runs} runs took {worst:.2f}s (target < 1 s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
