"""Overhead of ``runbooks run`` against plain ``papermill`` on the same trivial notebook.

Both are run as the command-line tools a user would type, interleaved (the order alternates each
round so neither side always runs on a warmer machine), after one unmeasured warm-up round of each.
Prints the median wall time of each and the median of the per-round ratios; target: at most 1.2.

    python bench/runner_overhead.py [--rounds 7] [--strict]

``--strict`` exits 1 when the median ratio is over the target.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

TARGET = 1.2


def trivial_notebook(path: Path) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["runbook"] = {"title": "Trivial", "summary": "benchmark", "destructive": False, "schedule": None}
    params = new_code_cell(
        'environment: str = "sandbox"  # target [one of: production, staging, sandbox]\nx: int = 1  # x'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("y = x + 1\nprint(y)")]
    nbformat.write(nb, path)


def tool(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", {"runbooks": "runbooks.cli.main", "papermill": "papermill"}[name]]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    ap.add_argument("--strict", action="store_true", help=f"exit 1 if the median ratio exceeds {TARGET}")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="runbooks-bench-") as tmp:
        d = Path(tmp)
        nb = d / "trivial.ipynb"
        trivial_notebook(nb)
        runbooks_cmd = [*tool("runbooks"), "run", str(nb), "-p", "x=2", "--archive", str(d / "runs")]
        papermill_cmd = [*tool("papermill"), "--no-progress-bar", str(nb), str(d / "out.ipynb"), "-p", "x", "2"]
        sides = {"runbooks run": runbooks_cmd, "papermill": papermill_cmd}
        for cmd in sides.values():  # warm-up: imports into the page cache, kernel spec lookup
            timed(cmd)
        times: dict[str, list[float]] = {name: [] for name in sides}
        ratios: list[float] = []
        for i in range(args.rounds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            this: dict[str, float] = {}
            for name in order:
                this[name] = timed(sides[name])
                times[name].append(this[name])
            ratios.append(this["runbooks run"] / this["papermill"])
            print(f"round {i + 1}: runbooks {this['runbooks run']:.2f}s  papermill {this['papermill']:.2f}s  "
                  f"ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip

    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = statistics.median(ratios)
    print(f"median runbooks run: {med['runbooks run']:.2f}s")
    print(f"median papermill:    {med['papermill']:.2f}s")
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"median ratio: {ratio:.2f} (target <= {TARGET}: {verdict})")
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
