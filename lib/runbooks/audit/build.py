"""``runbooks audit site OUT``: build (or rebuild) the static audit site from the archive.

The build reads the archive only through :class:`~runbooks.audit.reader.ArchiveReader` and writes plain
files under ``OUT``:

    index.html                 every run; filters, counts, search, export (assets/index.js over data/runs.js)
    runs/<run_id>.html         one page per run: manifest, results, diff, ledger position, notebook
    procedures/<name>.html     per procedure and environment: strips, trends, findings diff, latest runs
    compliance.html            with --compliance FILE
    data/runs.js, data/verify.js, assets/   data and the site's own CSS/JS
    .audit-site.json, .audit-runs.jsonl, .audit-verify.json   build state (state.py, verifier.py)

**Incremental.** Each run page's inputs (its ledger entry hash, its neighbours, the site version) are
digested; a page whose digest is unchanged is not rendered nor written; likewise a procedure page (the
entry hashes of its runs). Every other file is written only when its bytes change. Runs are kept in the
state keyed by ledger entry hash, so a rebuild reads only new runs' manifests and parses the kept
summaries of only the runs it draws again. The verify verdict is recomputed at every build, from the
checkpoint of the last intact verdict when there is one (:mod:`runbooks.audit.verifier`: the new ledger
lines and the changed runs are checked, the rest is vouched for by digests), else in full.

**Parallel.** Verification runs in its own process while run pages render in ``workers`` processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbooks.archive.ledger import LedgerEntry
from runbooks.archive.verify import VerifyReport
from runbooks.audit import pages, state
from runbooks.audit.catalog import RunSummary, by_series, summarise
from runbooks.audit.compliance import Compliance, load_compliance
from runbooks.audit.notebook import NotebookRenderer, NotebookRenderError
from runbooks.audit.reader import ArchiveReader
from runbooks.audit.state import STATE_NAME, RunRecord
from runbooks.audit.verifier import CHECKPOINT_NAME, Checkpoint, verify_since

__all__ = ["STATE_NAME", "BuildReport", "SiteError", "build_site"]
CHUNK = 200


class SiteError(RuntimeError):
    """The site cannot be built as asked (the message names the option and the fix); nothing was written."""


@dataclass
class BuildReport:
    runs: int
    written: list[str]  #: files written (relative to OUT)
    unchanged: int  #: files left as they were
    removed: list[str]
    verify_ok: bool
    findings: int
    rehashed: int
    seconds: float


# -- files ------------------------------------------------------------------------------------------
def _write_if_changed(out: Path, rel: str, data: bytes, written: list[str]) -> bool:
    path = out / rel
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    _write(path, data)
    written.append(rel)
    return True


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _listing(directory: Path) -> set[str]:
    try:
        with os.scandir(directory) as it:
            return {e.name for e in it}
    except OSError:
        return set()


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


# -- verification (own process) -----------------------------------------------------------------------
def _verify_job(location: str, out: str, full: bool) -> tuple[dict[str, Any], bytes, bool]:
    """The verdict (see :mod:`runbooks.audit.verifier`), the next checkpoint as bytes, and whether the
    previous build had found any run intact (else this verification was a full one)."""
    previous = Checkpoint.load(Path(out) / CHECKPOINT_NAME)
    report, checkpoint = verify_since(location, previous, full=full)
    return report.model_dump(mode="json"), checkpoint.dumps(), bool(previous.runs)


# -- run pages (worker processes) ---------------------------------------------------------------------
@dataclass(frozen=True)
class RunJob:
    rel: str
    entry: LedgerEntry
    prev: RunSummary | None
    next: RunSummary | None


_WORKER: dict[str, Any] = {}


def _render_runs(location: str, out: str, common: pages.Common, jobs: list[RunJob]) -> int:
    if "env" not in _WORKER:
        env = pages.environment(cache=True)
        _WORKER.update(env=env, renderer=NotebookRenderer(env))
    env, renderer = _WORKER["env"], _WORKER["renderer"]
    reader = ArchiveReader(location)
    for job in jobs:
        manifest = reader.read_manifest(job.entry)
        if manifest is None:
            continue  # verify reports it; the index lists what could be read
        nb = reader.read_notebook(job.entry)
        html, note = None, "This run archived no notebook (nothing ran: e.g. a refusal before any kernel started)."
        if nb is not None:
            try:
                html = renderer.render(nb)
            except NotebookRenderError as exc:
                note = f"The archived notebook cannot be shown: {exc}."
        page = pages.run_page(
            env,
            common,
            entry=job.entry,
            manifest=manifest,
            prev=job.prev,
            next_=job.next,
            notebook_html=html,
            notebook_note=note,
        )
        _write(Path(out) / job.rel, page.encode())
    return len(jobs)


def _summarise(location: str, entries: list[LedgerEntry]) -> dict[str, RunRecord]:
    """Records of runs read from their manifests (unreadable ones are left out: verify reports them)."""
    reader = ArchiveReader(location)
    out: dict[str, RunRecord] = {}
    for entry in entries:
        manifest = reader.read_manifest(entry)
        if manifest is not None:
            summary = summarise(entry, manifest)
            out[entry.run_id] = RunRecord.of(summary, pages.run_row(summary))
    return out


def _split(items: list[LedgerEntry], n: int) -> list[list[LedgerEntry]]:
    return [items[i::n] for i in range(n)]


def _chunks(items: list[RunJob], size: int) -> Iterator[list[RunJob]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- the build ----------------------------------------------------------------------------------------
def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SiteError(f"OUT {out} is a file; give a directory (it is created if missing)")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_NAME).exists():
        raise SiteError(
            f"OUT {out} is not empty and holds no audit site ({STATE_NAME} missing); "
            "give an empty or new directory, or the directory of an earlier build"
        )


def build_site(
    out: Path,
    location: Path | str | None = None,
    *,
    compliance_file: Path | None = None,
    workers: int | None = None,
    full_verify: bool = False,
) -> BuildReport:
    """Build or update the site in ``out`` from the archive at ``location`` (default: the project's)."""
    t0 = time.perf_counter()
    reader = ArchiveReader(location)
    try:
        reader.check()
    except RuntimeError as exc:
        raise SiteError(f"--archive {reader.location}: {exc}; give the archive root (RUNBOOKS_ARCHIVE)") from None
    compliance: Compliance | None = load_compliance(compliance_file) if compliance_file else None
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)

    ctx = multiprocessing.get_context("fork")
    n_workers = workers or max(1, min(4, os.cpu_count() or 1))
    with (
        ProcessPoolExecutor(max_workers=1, mp_context=ctx) as verifier,
        ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool,
    ):
        # forked first, while this process is small; it reads its own checkpoint
        verified = verifier.submit(_verify_job, reader.location, str(out), full_verify)
        version = pages.site_version()
        old = state.load(out, version)
        fields = reader.entry_fields()

        records: dict[str, RunRecord] = {}
        to_read: list[LedgerEntry] = []
        for f in fields:
            hit = old.runs.get(f["run_id"])
            if hit is not None and hit.entry_hash == f["hash"]:
                records[hit.run_id] = hit
            else:
                to_read.append(LedgerEntry.model_construct(**f))
        if len(to_read) > 2 * CHUNK:  # a full build: read manifests in the workers too
            for part in pool.map(_summarise, [reader.location] * n_workers, _split(to_read, n_workers)):
                records.update(part)
        else:
            records.update(_summarise(reader.location, to_read))
        records = {f["run_id"]: records[f["run_id"]] for f in fields if f["run_id"] in records}  # ledger order
        runs = list(records.values())
        series = by_series(runs)
        procedures = sorted({r.procedure for r in runs})
        procedures_key = "|".join(procedures)

        # run pages: only those whose inputs changed
        jobs: list[RunJob] = []
        existing = _listing(out / "runs")
        entry_of = {f["run_id"]: f for f in fields}
        for group in series.values():
            for i, r in enumerate(group):
                prev = group[i - 1] if i else None
                nxt = group[i + 1] if i + 1 < len(group) else None
                digest = _digest(
                    version,
                    r.entry_hash,
                    prev and prev.entry_hash,
                    nxt and nxt.entry_hash,
                    procedures_key,
                    compliance is not None,
                )
                if r.page != digest or f"{r.run_id}.html" not in existing:
                    entry = LedgerEntry.model_construct(**entry_of[r.run_id])
                    summary = (prev.summary if prev else None, nxt.summary if nxt else None)
                    jobs.append(RunJob(f"runs/{r.run_id}.html", entry, *summary))
                    r.set_page(digest)

        placeholder = pages.Verdict(True, "", len(fields), reader.head_hash(), [], True, 0)
        run_common = pages.Common(procedures, placeholder, Path(reader.location).name, compliance is not None)
        rendering: list[Future[int]] = [
            pool.submit(_render_runs, reader.location, str(out), run_common, chunk)
            for chunk in _chunks(jobs, max(20, min(CHUNK, len(jobs) // (n_workers * 4) + 1)))
        ]

        env = pages.environment(cache=True)
        files: dict[str, bytes] = dict(pages.static_assets())
        ordered = sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)
        runs_js = pages.runs_script([r.js_row for r in ordered]).encode()
        files["data/runs.js"] = runs_js
        new_pages: dict[str, str] = {}
        proc_files: dict[str, bytes] = {}
        for procedure in procedures:
            per_env = {e: group for (p, e), group in series.items() if p == procedure}
            rel = f"procedures/{pages.slug(procedure)}.html"
            digest = _digest(
                version,
                procedures_key,
                compliance is not None,
                *(f"{e}:{r.entry_hash}" for e, group in sorted(per_env.items()) for r in group),
            )
            new_pages[rel] = digest
            if old.pages.get(rel) == digest and (out / rel).exists():
                continue  # its runs are the same: the page is (the verdict comes from data/verify.js)
            summaries = {e: [r.summary for r in group] for e, group in per_env.items()}
            proc_files[rel] = pages.procedure_page(env, run_common, procedure, summaries).encode()

        report_data, checkpoint, had_checkpoint = verified.result()
        report = VerifyReport.model_validate(report_data)
        for done in rendering:
            done.result()

    written = [j.rel for j in jobs]
    verdict = pages.Verdict(
        ok=report.ok,
        at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        entries=report.ledger_entries,
        head=reader.head_hash(),
        findings=[f.model_dump(mode="json") for f in report.findings],
        full=full_verify or not had_checkpoint,
        rehashed=report.runs_checked,
    )
    common = pages.Common(procedures, verdict, Path(reader.location).name, compliance is not None)
    files["data/verify.js"] = verdict.script().encode()
    files["index.html"] = pages.index_page(env, common, list(runs), hashlib.sha256(runs_js).hexdigest()[:12]).encode()
    if compliance is not None:
        files["compliance.html"] = pages.compliance_page(env, common, compliance, set(records)).encode()
    unchanged = len(runs) - len(jobs) + len(new_pages) - len(proc_files)
    for rel, data in [*files.items(), *proc_files.items()]:
        if not _write_if_changed(out, rel, data, written):
            unchanged += 1
    new_pages.update(dict.fromkeys(files, ""))

    removed = []
    old_files = set(old.pages) | {f"runs/{rid}.html" for rid in old.runs}
    for rel in sorted(old_files - set(new_pages) - {f"runs/{rid}.html" for rid in records}):
        with contextlib.suppress(FileNotFoundError):
            (out / rel).unlink()
            removed.append(rel)

    _write(out / CHECKPOINT_NAME, checkpoint)
    state.save(out, state.SiteState(version, new_pages, records), _write)
    return BuildReport(
        runs=len(runs),
        written=written,
        unchanged=unchanged,
        removed=removed,
        verify_ok=report.ok,
        findings=len(report.findings),
        rehashed=report.runs_checked,
        seconds=time.perf_counter() - t0,
    )
