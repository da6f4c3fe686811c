"""Benchmark: the restore drill's restore against a bare ``pg_restore -j 2`` of the same dump.

A twin is brought up in a temporary directory, a database of ``--rows`` rows (with an index) is generated
and backed up once with nightly-backup's pipeline. Then, interleaved ``--repeat`` times:

- drill: ``run_drill`` with the drill-only credential; its RTO is measured from the start to a usable
  database (fetch + sha256 + age decryption + zstd + ``pg_restore -j 2`` + first query);
- bare: create a database and ``pg_restore -j 2`` the same dump, already decrypted on local disk.

Prints medians and the ratio; target: drill at most 1.15x bare.

Usage: python bench/restore.py [--rows 1500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from synthetic import events_database

from runbooks.procedures.backup import run_backup
from runbooks.procedures.restore import fetch_backup, pg_restore, run_drill
from runbooks.providers.postgres import Postgres
from runbooks.providers.s3 import S3
from runbooks.sandbox.fixture import Sandbox, running_sandbox

JOBS = 2
TARGET = 1.15


def bare(pg: Postgres, dump: Path, n: int) -> float:
    name = f"bench_bare_{n + 1}"
    t0 = time.perf_counter()
    pg.create_database(name)
    try:
        pg_restore(pg, name, dump, jobs=JOBS)
        with pg.for_database(name).connect() as conn:
            conn.execute("SELECT 1")
        return time.perf_counter() - t0
    finally:
        pg.drop_database(name)


def run(sbx: Sandbox, rows: int, repeat: int, workdir: Path) -> int:
    env = sbx.inventory()
    pg = Postgres(sbx.database_url)
    db = events_database(pg, "bench_restore", rows, restore_shape=True)
    writer = S3.from_environment(env, "s3_backup_writer")
    drill = S3.from_environment(env, "s3_drill_reader")
    identity = sbx.secret("backup_age_identity")
    taken = run_backup(
        db, writer, bucket=env.backup_bucket.name, prefix="bench-restore/", recipient=env.backup.recipient
    )
    dump = workdir / "same.dump"
    fetch_backup(drill, env.backup_bucket.name, taken.manifest()["object"], identity, dump)
    print(
        f"dump: {taken.dump_bytes / 2**20:.0f} MiB plain, {taken.size / 2**20:.0f} MiB stored, "
        f"{sum(taken.row_counts.values())} rows"
    )

    def one_drill() -> tuple[float, dict[str, float]]:
        r = run_drill(
            drill,
            pg,
            bucket=env.backup_bucket.name,
            prefix="bench-restore/",
            identity=identity,
            key=taken.key,
            jobs=JOBS,
            workdir=workdir,
        )
        if not r.ok or r.rto_seconds is None:
            raise SystemExit(f"drill failed: {r.error or r.count_mismatches or r.schema_mismatches}")
        return r.rto_seconds, r.timings

    one_drill(), bare(pg, dump, -1)  # warm-up (caches, first-use costs), not counted
    drills, bares = [], []
    for i in range(repeat):
        if i % 2:  # alternate the order, so neither always runs on a warmer machine
            bares.append(bare(pg, dump, i))
            rto, timings = one_drill()
        else:
            rto, timings = one_drill()
            bares.append(bare(pg, dump, i))
        drills.append(rto)
        print(
            f"  round {i + 1}: drill {drills[-1]:.2f}s (restore {timings['restore']:.2f}s, fetch+verify+decrypt "
            f"{timings['fetch_verify_decrypt']:.2f}s) | bare pg_restore -j {JOBS} {bares[-1]:.2f}s"
        )
    d, b = statistics.median(drills), statistics.median(bares)
    ratio = d / b
    print(
        json.dumps(
            {"drill_rto_seconds": round(d, 3), "bare_pg_restore_seconds": round(b, 3), "ratio": round(ratio, 3)},
            indent=2,
        )
    )
    print(f"drill/bare = {ratio:.2f}x (target <= {TARGET}x): {'OK' if ratio <= TARGET else 'MISSED'}")
    pg.drop_database(db.dbname)
    return 0 if ratio <= TARGET else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=1_500_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp,
        running_sandbox(Path(tmp) / "twin", components=["supabase"], set_env=True) as sbx,
    ):
        return run(sbx, args.rows, args.repeat, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
