"""Benchmark: nightly-backup's pipeline against ``pg_dump -Fc | zstd | aws s3 cp -`` on the same twin.

A twin (Postgres + S3 + Supabase) is brought up in a temporary directory and a database of
``--rows`` rows (text columns and an index) is generated. Both pipelines dump it to the backup bucket
with the backup-writer credential, interleaved ``--repeat`` times, each as a process tree whose peak RSS
(all processes, pg_dump included) is sampled. Prints medians and ratios; target: our throughput at
least 1.0x the baseline. When the ``zstd`` or ``aws`` CLI is missing, the baseline stage is replaced by
a Python equivalent (zstandard's ``copy_stream``; boto3's ``upload_fileobj`` of stdin) and the
printed baseline says so.

Usage: python bench/backup.py [--rows 1500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
from synthetic import events_database

from runbooks.providers.postgres import Postgres
from runbooks.sandbox.fixture import Sandbox, running_sandbox

OURS = textwrap.dedent("""\
    import os
    from runbooks.procedures.backup import run_backup
    from runbooks.providers.postgres import Postgres
    from runbooks.providers.s3 import S3
    s3 = S3(access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=os.environ["B_ENDPOINT"], region=os.environ["AWS_DEFAULT_REGION"])
    run_backup(Postgres(os.environ["B_DSN"]), s3, bucket=os.environ["B_BUCKET"], prefix="bench/ours/",
               recipient=os.environ["B_RECIPIENT"])
    """)
PY_ZSTD = "import sys, zstandard; zstandard.ZstdCompressor().copy_stream(sys.stdin.buffer, sys.stdout.buffer)"
PY_UPLOAD = (
    "import os, sys, boto3; boto3.client('s3', endpoint_url=os.environ['B_ENDPOINT']).upload_fileobj("
    "sys.stdin.buffer, os.environ['B_BUCKET'], sys.argv[1])"
)


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of the whole process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)[:200]} failed ({proc.returncode}): {err.decode()[-1500:]}")
    return wall, peak[0]


def baseline_cmd(pg_dump: str, db: Postgres, n: int) -> tuple[list[str], str]:
    zstd = "zstd -q -c" if shutil.which("zstd") else f"{shlex.quote(sys.executable)} -c {shlex.quote(PY_ZSTD)}"
    key = f"s3://$B_BUCKET/bench/baseline/{n}.dump.zst"
    if shutil.which("aws"):
        upload = f'aws s3 cp - "{key}" --endpoint-url "$B_ENDPOINT" --only-show-errors'
    else:
        upload = f"{shlex.quote(sys.executable)} -c {shlex.quote(PY_UPLOAD)} bench/baseline/{n}.dump.zst"
    label = (
        f"pg_dump -Fc | {'zstd' if shutil.which('zstd') else 'python zstandard copy_stream'} | "
        f"{'aws s3 cp -' if shutil.which('aws') else 'python boto3 upload_fileobj(stdin)'}"
    )
    dump = f"{shlex.quote(pg_dump)} -Fc --no-password --dbname={shlex.quote(db.conninfo(password=False))}"
    return ["bash", "-o", "pipefail", "-c", f"{dump} | {zstd} | {upload}"], label


def run(sbx: Sandbox, rows: int, repeat: int) -> int:
    env = sbx.inventory()
    pg = Postgres(sbx.database_url)
    t = time.perf_counter()
    db = events_database(pg, "bench_backup", rows)
    with db.connect() as conn:
        size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
    print(f"database: {rows} rows, {size / 2**20:.0f} MiB on disk (generated in {time.perf_counter() - t:.1f}s)")
    child_env = {
        **db.tool_env(),
        "AWS_ACCESS_KEY_ID": sbx.secret("backup_aws_access_key_id"),
        "AWS_SECRET_ACCESS_KEY": sbx.secret("backup_aws_secret_access_key"),
        "AWS_DEFAULT_REGION": env.endpoints.s3_region,
        "B_ENDPOINT": str(env.endpoints.s3),
        "B_BUCKET": env.backup_bucket.name,
        "B_DSN": db.conninfo(),
        "B_RECIPIENT": env.backup.recipient,
    }
    pg_dump = db.tool("pg_dump")
    ours_t, ours_m, base_t, base_m = [], [], [], []
    label = ""
    for i in range(repeat):
        w, m = measure([sys.executable, "-c", OURS], child_env)
        ours_t.append(w)
        ours_m.append(m)
        cmd, label = baseline_cmd(pg_dump, db, i)
        w, m = measure(cmd, child_env)
        base_t.append(w)
        base_m.append(m)
        print(
            f"  round {i + 1}: ours {ours_t[-1]:.2f}s {ours_m[-1] / 2**20:.0f} MiB | "
            f"baseline {base_t[-1]:.2f}s {base_m[-1] / 2**20:.0f} MiB"
        )
    o, b = statistics.median(ours_t), statistics.median(base_t)
    om, bm = statistics.median(ours_m), statistics.median(base_m)
    ratio = b / o
    print(f"baseline: {label}")
    print(
        json.dumps(
            {
                "ours": {
                    "seconds": round(o, 3),
                    "mib_s": round(size / 2**20 / o, 1),
                    "peak_rss_mib": round(om / 2**20, 1),
                },
                "baseline": {
                    "seconds": round(b, 3),
                    "mib_s": round(size / 2**20 / b, 1),
                    "peak_rss_mib": round(bm / 2**20, 1),
                },
                "throughput_ratio": round(ratio, 2),
                "peak_rss_ratio": round(om / bm, 2),
            },
            indent=2,
        )
    )
    print(f"throughput ours/baseline = {ratio:.2f}x (target >= 1.0x): {'OK' if ratio >= 1.0 else 'MISSED'}")
    pg.drop_database(db.dbname)
    return 0 if ratio >= 1.0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=1_500_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp,
        running_sandbox(Path(tmp) / "twin", components=["supabase"]) as sbx,
    ):
        os.environ.pop("AWS_PROFILE", None)
        return run(sbx, args.rows, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
