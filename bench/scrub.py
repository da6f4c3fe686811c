"""Benchmark: scrub throughput (MB/s) of the runner's redactor on 1, 10 and 100 MB of mixed output.

The output mixes ordinary text (check tables, SQL, URLs, hashes), credential-shaped text (AWS key ids and
secret keys next to hints, ``password=`` assignments, DSNs with passwords, JWTs, Bearer tokens) and the
registered values of ten secrets, whole and in rendered or cut forms. Time must grow linearly with the
size: exits 1 if scrubbing 100 MB takes more than 12 times as long as 10 MB.
Usage: python bench/scrub.py [--sizes 1,10,100] [--max-ratio 12]
"""

from __future__ import annotations

import argparse
import html
import random
import sys
import time
from urllib.parse import quote_plus

from runbooks.redact import Redactor

MB = 1_000_000
_ORDINARY = [
    "          dns.record_points_to_origin      app.runspectral.com   PASS       CNAME app-blue.onrender.com\n",
    "SELECT id, email FROM auth.users WHERE created_at > now() - interval '1 day' LIMIT 50;\n",
    "https://api.cloudflare.com/client/v4/zones?name=runspectral.com&status=active\n",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  events.dump\n",
    "2026-11-29 03:17:02,114 INFO nightly-backup: uploaded part 7/12 (64.0 MiB) to spectral-backups\n",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b; etag d41d8cd98f00b204e9800998ecf8427e\n",
]
_CREDENTIAL_SHAPED = [
    "aws_access_key_id=AKIA" + "Q2W3E4R5T6Y7U8I9 aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "PGPASSWORD=hunter2hunter2 psql postgresql://app:p@ss@db.internal:5432/app\n",
    "Authorization: Bearer abcDEF123456789xyzabcDEF123456789xyz\n",
    "token eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl\n",
    '{"user": "app", "password": "c0rrect horse battery"}\n',
]


def secrets_of(rng: random.Random) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789&<>'\" /+@#"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(16, 64))) for _ in range(10)]


def registered_lines(values: list[str]) -> list[str]:
    lines = []
    for v in values:
        lines += [f"value {v}\n", f"<td>{html.escape(v)}</td>\n", f"?token={quote_plus(v)}&x=1\n", f"| {v[:14]}... |\n"]
    return lines


def mixed_output(size: int, values: list[str], rng: random.Random) -> str:
    pool = _ORDINARY * 6 + _CREDENTIAL_SHAPED + registered_lines(values)
    chunk = "".join(rng.choice(pool) for _ in range(4000))
    return (chunk * (size // len(chunk) + 1))[:size]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,100", help="sizes in MB, comma separated")
    ap.add_argument("--max-ratio", type=float, default=12.0)
    args = ap.parse_args()
    rng = random.Random(9)
    values = secrets_of(rng)
    redactor = Redactor()
    for i, v in enumerate(values):
        redactor.register(v, f"env:SECRET_{i}")
    redactor.scrub("warm-up: builds the search structures")
    times: dict[int, float] = {}
    for mb in (int(s) for s in args.sizes.split(",")):
        text = mixed_output(mb * MB, values, rng)
        best = float("inf")
        for _ in range(3 if mb <= 10 else 2):  # CPU time, best of a few: the machine may be shared
            t = time.process_time()
            out = redactor.scrub(text)
            best = min(best, time.process_time() - t)
        times[mb] = best
        assert not any(v in out for v in values), "a registered value survived"
        print(f"{mb:>4} MB: {times[mb]:7.2f} s CPU  {mb / times[mb]:6.1f} MB/s")
        del text, out
    if 10 in times and 100 in times:
        ratio = times[100] / times[10]
        print(f"100 MB / 10 MB time: {ratio:.1f}x (linear: 10x; limit {args.max_ratio:g}x)")
        if ratio > args.max_ratio:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
