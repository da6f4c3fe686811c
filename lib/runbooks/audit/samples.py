"""A synthetic archive of realistic runs (manifest, check results, executed notebook) for the audit site's
tests and benchmark. Nothing is executed: the notebooks look like the runner's archived ones (cell statuses,
an error output on the failing cell, tables of checks), with sizes like the real ones (tens of kB)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.archive.canonical import model_canonical_json, sha256_hex
from runbooks.archive.index import RunIndex, row_values
from runbooks.archive.layout import run_rel_path
from runbooks.archive.ledger import GENESIS, LedgerEntry, write_atomic
from runbooks.archive.manifest import RunError, RunManifest, RunStatus
from runbooks.archive.samples import sample_manifest
from runbooks.archive.store import Archive

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROCEDURES = ("check-dns-posture", "verify-backup-posture", "nightly-backup", "restore-drill", "rotate-keys")
HOSTS = ("app", "ops", "api", "docs", "codex")
CHECKS = ("dns.record", "dns.proxied", "dns.resolution", "tls.chain", "tls.name", "tls.expiry")


def check_results(rng: random.Random, failing: bool) -> list[dict[str, Any]]:
    rows = []
    for host in HOSTS:
        for check in CHECKS:
            status = "PASS"
            if failing and host == "app" and check == "tls.expiry":
                status = "FAIL"
            elif rng.random() < 0.03:
                status = "WARN"
            rows.append(
                {
                    "check": check,
                    "subject": f"{host}.runspectral.com",
                    "status": status,
                    "evidence": f"{check} of [{host}.runspectral.com]: " + ("ok" if status == "PASS" else "3 days"),
                    "remediation": "" if status == "PASS" else "renew the certificate at the edge",
                }
            )
    return rows


def results_for(procedure: str, rng: random.Random, failing: bool) -> dict[str, Any]:
    if procedure in ("check-dns-posture", "verify-backup-posture"):
        rows = check_results(rng, failing)
        counts = {s: sum(r["status"] == s for r in rows) for s in ("PASS", "WARN", "FAIL")}
        return {"checks": rows, "counts": counts}
    if procedure == "nightly-backup":
        size = int(40e6 + rng.random() * 5e6)
        return {"stored": {"object": "backups/spectral.dump.zst.age", "size": size}, "row_counts": {"users": 1200}}
    if procedure == "restore-drill":
        return {"rto_seconds": round(30 + rng.random() * 20, 2), "rpo_seconds": round(3600 + rng.random() * 600, 1)}
    return {"plan": [{"key": "SUPABASE_SECRET_KEY", "step": s, "state": "done"} for s in ("issue", "write", "deploy")]}


def _table_html(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{c}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def new_markdown_cell(source: str) -> dict[str, Any]:
    """Cells and notebooks as plain dicts: nbformat's constructors validate each one (slow for 10,000 runs)."""
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def new_code_cell(source: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata or {}, "outputs": [], "source": source}


def sample_notebook(manifest: RunManifest) -> bytes:
    """An executed, archived-looking notebook for ``manifest`` (failing cell per ``manifest.error``)."""
    cells: list[dict[str, Any]] = []
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "runbook": {"title": manifest.procedure, "summary": "synthetic", "destructive": False},
        "runbook_run": {"run_id": manifest.run_id, "status": str(manifest.status)},
    }
    nb = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    cells.append(new_markdown_cell(f"# {manifest.procedure}\n\nWhat this runbook proves, and **why**."))
    params = "\n".join(f"{k} = {json.dumps(v)}" for k, v in manifest.parameters.items())
    cells.append(new_code_cell('environment: str = "sandbox"  # target', metadata={"tags": ["parameters"]}))
    cells.append(new_code_cell(f"# Parameters\n{params}", metadata={"tags": ["injected-parameters"]}))
    rows = manifest.results.get("checks") or check_results(random.Random(manifest.run_id), False)
    fail_at = manifest.error.cell_index if manifest.error else None
    for i in range(3, 12):
        cell = new_code_cell(
            f"from runbooks.checks import dns_posture\nresults_{i} = dns_posture.run(env, step={i})\n"
            f"runbooks.show(results_{i}, title='step {i}')"
        )
        if fail_at is not None and i > fail_at:
            cell["metadata"]["runbook_status"] = "not_run"
            cells.append(cell)
            continue
        cell["execution_count"] = i
        # outputs as plain dicts: nbformat's new_output validates each one (slow for 10,000 notebooks)
        cell["outputs"].append({"output_type": "stream", "name": "stdout", "text": f"step {i}: {len(rows)} rows\n" * 3})
        if i % 2 == 0:
            data = {"text/html": _table_html(rows), "text/plain": f"<{len(rows)} rows>"}
            cell["outputs"].append({"output_type": "display_data", "data": data, "metadata": {}})
        if i == fail_at and manifest.error is not None:
            err = manifest.error
            cell["outputs"].append(
                {
                    "output_type": "error",
                    "ename": err.kind,
                    "evalue": err.message,
                    "traceback": [f"\x1b[0;31m{err.kind}\x1b[0m: {err.message}"],
                }
            )
            cell["metadata"]["runbook_status"] = str(manifest.status)
        else:
            cell["metadata"]["runbook_status"] = "ok"
        cells.append(cell)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False).encode()  # nbformat.writes validates: slow


def sample_runs(n: int, seed: int = 7, start: datetime = T0) -> Iterator[RunManifest]:
    """``n`` manifests over procedures, environments, actors and triggers; about 8% fail, 2% are refused."""
    rng = random.Random(seed)
    for i in range(n):
        procedure = PROCEDURES[i % len(PROCEDURES)]
        roll = rng.random()
        status = RunStatus.FAILED if roll < 0.08 else RunStatus.REFUSED if roll < 0.10 else RunStatus.SUCCEEDED
        m = sample_manifest(
            procedure,
            started_at=start + timedelta(minutes=37 * i, seconds=rng.randint(0, 59)),
            status=status,
            environment=("production", "staging", "sandbox")[(i // len(PROCEDURES)) % 3],
            actor=("cron", "alice", "bob")[i % 3],
            trigger="schedule" if i % 3 == 0 else "manual",
            duration=round(2 + rng.random() * 40, 2),
            results=results_for(procedure, rng, status is RunStatus.FAILED),
        )
        if status is RunStatus.FAILED:
            m = m.model_copy(update={"error": RunError(kind="ChecksFailed", message="1 check FAIL", cell_index=6)})
        yield m


def commit_runs(archive: Archive, manifests: Iterator[RunManifest] | list[RunManifest]) -> int:
    """Commit each run with its sample notebook through the archive (slow, real: for tests)."""
    n = 0
    for m in manifests:
        archive.commit(m, {"notebook.ipynb": sample_notebook(m)})
        n += 1
    return n


def bulk_archive(archive: Archive, manifests: Iterator[RunManifest] | list[RunManifest]) -> int:
    """Write runs, ledger, head and index in bulk, without per-run fsync (the benchmark's 10,000 runs).

    Produces exactly what committing each run would (``runs verify`` finds nothing)."""
    root = archive.root
    root.mkdir(parents=True, exist_ok=True)
    prev, lines, rows, seq = GENESIS, [], [], 0
    for m in manifests:
        seq += 1
        notebook = sample_notebook(m)
        final = m.model_copy(update={"files": {"notebook.ipynb": sha256_hex(notebook)}})
        body = model_canonical_json(final) + b"\n"
        rel = run_rel_path(m.run_id, m.started_at)
        d = root / rel
        d.mkdir(parents=True)
        (d / "notebook.ipynb").write_bytes(notebook)
        (d / "run.json").write_bytes(body)
        entry = LedgerEntry.make(seq, m.run_id, rel, sha256_hex(body), prev)
        prev = entry.hash
        lines.append(entry.line())
        rows.append(row_values(final, rel, entry.manifest_sha256))
    with open(root / "ledger.jsonl", "ab") as f:
        f.write(b"".join(lines))
    if seq:
        write_atomic(root / "ledger.head", json.dumps({"count": seq, "hash": prev}).encode() + b"\n")
    RunIndex(root / "index.sqlite").insert_many(rows)
    return seq
