"""The verify verdict of an audit-site build, from work proportional to what changed since the last build.

The archive's full verification (:func:`runbooks.archive.verify.verify`, ``runbooks runs verify``) parses
the whole ledger, lists every run directory, dumps the index and hashes every file. A rebuild after one
new run does not need all of that: when the previous build found the archive intact, it left a
:class:`Checkpoint` (``OUT/.audit-verify.json``), and the next build's **fast path** establishes the same
verdict from:

1. **The ledger up to the checkpoint is the one verified**: its first ``size`` bytes hash to the recorded
   sha256. The ledger is append-only and hash-chained, so this vouches for every old entry; an edited,
   removed or reordered old line changes those bytes.
2. **Every later line continues the chain**: a well-formed entry whose ``seq`` is the next number, whose
   ``prev`` is the previous entry's hash, whose hash matches its content, with a run id and path not seen
   before; the file ends with a newline (no partial line).
3. **The head anchors the last entry** (``ledger.head``: count and hash) and no commit is in progress.
4. **The run directories are exactly the ledger's paths** (a fast listing of ``YYYY/MM/DD/<run>``).
5. **The index holds exactly the ledger's runs**, each row's ``path`` and ``manifest_sha256`` those of
   its entry.
6. **Every run is unchanged or checked**: a run's *signature* digests its entry hash, the name, size,
   modification and change times and inode of every file and directory in its run directory, and its
   index row (every column but the stored manifest JSON). A file cannot be written, nor its times set
   back, without changing its change time. A run whose signature differs from the one recorded when it
   was last found intact (every new run, any edited old run) is checked in full: manifest hash, manifest,
   every file hash, no missing or extra file, index row equal to its ``run.json``.

The fast path only ever answers "intact". Anything it does not expect (a condition above fails, a run
has a finding, there is no checkpoint, ``full``) runs the full verification, which reports the findings
exactly as ``runbooks runs verify`` does; it still skips re-hashing runs whose signature is unchanged
since they were found intact (``full`` re-hashes everything). A checkpoint is written only after a
verdict of "intact" and describes only what that verdict covered.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.archive.index import COLUMNS, row_values
from runbooks.archive.layout import TWO_DIGIT_DIR, YEAR_DIR  # the layout's own name rules
from runbooks.archive.ledger import LedgerEntry, parse_line
from runbooks.archive.store import Archive
from runbooks.archive.verify import VerifyReport, check_run, verify

CHECKPOINT_NAME = ".audit-verify.json"
_PATH_COLUMN = [c.strip() for c in COLUMNS.split(",")].index("path")


@dataclass
class Checkpoint:
    """What the last build's verification found intact."""

    size: int = 0  #: bytes of ledger.jsonl verified (0: no clean verdict to start from)
    sha256: str = ""  #: of those bytes
    count: int = 0  #: entries in those bytes (a clean ledger numbers them 1..count)
    last_hash: str = ""  #: hash of entry ``count``
    runs: dict[str, list[str]] = field(default_factory=dict)  #: run id -> [path, signature], runs found intact

    @property
    def clean(self) -> bool:
        return self.size > 0

    def dumps(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """The checkpoint in ``path``; an empty one when it is missing or not one (a full verification)."""
        try:
            cp = cls(**json.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError):
            return cls()
        shapes = (
            isinstance(cp.size, int) and isinstance(cp.count, int) and isinstance(cp.sha256, str),
            isinstance(cp.last_hash, str) and isinstance(cp.runs, dict),
        )
        if not all(shapes) or not all(
            isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v) for v in cp.runs.values()
        ):
            return cls()
        return cp


# -- signatures ---------------------------------------------------------------------------------------
def _tree_stats(path: str, parts: list[str], prefix: str = "") -> None:
    with os.scandir(path) as it:
        for e in sorted(it, key=lambda d: d.name):
            st = e.stat(follow_symlinks=False)
            parts.append(f"{prefix}{e.name}:{st.st_mode}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}")
            if e.is_dir(follow_symlinks=False):
                _tree_stats(e.path, parts, f"{prefix}{e.name}/")


def signature(root: str, entry_hash: str, path: str, index_row: tuple[object, ...] | None) -> str:
    """Digest of a run's ledger entry, the stats of everything in its directory and its index row."""
    parts = [entry_hash, repr(index_row)]
    try:
        st = os.stat(f"{root}/{path}", follow_symlinks=False)
        parts.append(f".:{st.st_mode}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}")
        _tree_stats(f"{root}/{path}", parts)
    except OSError:
        parts.append("missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def index_rows(archive: Archive) -> dict[str, tuple[object, ...]]:
    """Index rows by run id, every column but the stored manifest JSON (cheap: no manifest is read)."""
    if not archive.index.exists():
        return {}
    try:
        with archive.index.connect() as conn:
            return {str(r[0]): tuple(r) for r in conn.execute(f"SELECT {COLUMNS} FROM runs")}
    except sqlite3.Error:
        return {}


def run_dirs(root: str) -> set[str]:
    """``YYYY/MM/DD/<run>`` directories, by the same rules as :func:`runbooks.archive.layout.iter_run_dirs`."""
    out: set[str] = set()

    def subdirs(path: str, rule: Any) -> list[tuple[str, str]]:
        with os.scandir(path) as it:
            return [(e.name, e.path) for e in it if (rule is None or rule.match(e.name)) and e.is_dir()]

    for y, yp in subdirs(root, YEAR_DIR):
        for m, mp in subdirs(yp, TWO_DIGIT_DIR):
            for d, dp in subdirs(mp, TWO_DIGIT_DIR):
                out.update(f"{y}/{m}/{d}/{r}" for r, _ in subdirs(dp, None))
    return out


# -- the fast path ------------------------------------------------------------------------------------
def _tail_entries(data: bytes, cp: Checkpoint, known_paths: set[str]) -> list[LedgerEntry] | None:
    """The entries after the checkpoint when they continue its chain soundly; None otherwise."""
    if len(data) < cp.size or hashlib.sha256(data[: cp.size]).hexdigest() != cp.sha256:
        return None
    tail = data[cp.size :]
    if tail and not tail.endswith(b"\n"):
        return None
    out: list[LedgerEntry] = []
    seq, prev = cp.count, cp.last_hash
    ids, paths = set(cp.runs), set(known_paths)
    for i, raw in enumerate(tail.split(b"\n")[:-1] if tail else []):
        e = parse_line(cp.count + i + 1, raw, True).entry
        if e is None or e.seq != seq + 1 or e.prev != prev or e.hash != e.expected_hash():
            return None
        if e.run_id in ids or e.path in paths:
            return None
        ids.add(e.run_id)
        paths.add(e.path)
        out.append(e)
        seq, prev = e.seq, e.hash
    return out


def _index_row_matches(archive: Archive, entry: LedgerEntry, manifest: Any) -> bool:
    with archive.index.connect() as conn:
        row = conn.execute(f"SELECT {COLUMNS}, manifest FROM runs WHERE run_id = ?", (entry.run_id,)).fetchone()
    return row is not None and tuple(row) == row_values(manifest, entry.path, entry.manifest_sha256)


def _fast(archive: Archive, cp: Checkpoint, data: bytes) -> tuple[VerifyReport, Checkpoint] | None:
    root = str(archive.root)
    tail = _tail_entries(data, cp, {p for p, _ in cp.runs.values()})
    if tail is None or archive.intent_path.exists():
        return None
    count = cp.count + len(tail)
    last_hash = tail[-1].hash if tail else cp.last_hash
    head = archive.ledger.read_head()
    if head is None or head.count != count or head.hash != last_hash:
        return None
    paths = {rid: p for rid, (p, _) in cp.runs.items()} | {e.run_id: e.path for e in tail}
    if len(paths) != count or run_dirs(root) != set(paths.values()):
        return None
    has_index = archive.index.exists()
    rows = index_rows(archive)
    if has_index and rows.keys() != paths.keys():
        return None
    runs: dict[str, list[str]] = {}
    checked = 0
    new = {e.run_id: e for e in tail}
    for rid, (path, old_sig) in [*cp.runs.items(), *((e.run_id, (e.path, "")) for e in tail)]:
        row = rows.get(rid)
        if row is not None and row[_PATH_COLUMN] != path:
            return None
        entry_hash = new[rid].hash if rid in new else old_sig.split(":", 1)[0]
        sig = f"{entry_hash}:{signature(root, entry_hash, path, row)}"
        if sig != old_sig:
            if rid not in new:
                return None  # an old run changed: the full verification says what, with the usual detail
            checked += 1
            findings, manifest = check_run(new[rid], archive.root / path)
            if findings or manifest is None or (has_index and not _index_row_matches(archive, new[rid], manifest)):
                return None
        runs[rid] = [path, sig]
    report = VerifyReport(root=root, ledger_entries=count, runs_checked=checked, findings=[], notes=[])
    return report, Checkpoint(len(data), hashlib.sha256(data).hexdigest(), count, last_hash, runs)


# -- the verdict --------------------------------------------------------------------------------------
def _full(archive: Archive, cp: Checkpoint, data: bytes, full: bool) -> tuple[VerifyReport, Checkpoint]:
    root = str(archive.root)
    rows = index_rows(archive)
    sigs: dict[str, list[str]] = {}

    def unchanged(entry: LedgerEntry) -> bool:
        sig = f"{entry.hash}:{signature(root, entry.hash, entry.path, rows.get(entry.run_id))}"
        sigs[entry.run_id] = [entry.path, sig]
        return not full and cp.runs.get(entry.run_id) == [entry.path, sig]

    report = verify(archive, unchanged=unchanged)
    bad = {f.run_id for f in report.findings}
    if not report.ok:  # keep what was found intact (not re-hashed next time); no clean start for the fast path
        return report, Checkpoint(runs={k: v for k, v in sigs.items() if k not in bad})
    # the checkpoint covers the ledger as read before verify() (append-only: verify read at least that much)
    size = data.rfind(b"\n") + 1
    lines = data[:size].split(b"\n")[:-1]
    last = parse_line(len(lines), lines[-1], True).entry if lines else None
    if last is None or last.seq != len(lines):
        return report, Checkpoint(runs=sigs)
    runs = {}
    for raw in lines:
        e = parse_line(0, raw, True).entry
        if e is not None and e.run_id in sigs:
            runs[e.run_id] = sigs[e.run_id]
    if len(runs) != len(lines):
        return report, Checkpoint(runs=sigs)
    return report, Checkpoint(size, hashlib.sha256(data[:size]).hexdigest(), last.seq, last.hash, runs)


def verify_since(location: str, checkpoint: Checkpoint, *, full: bool = False) -> tuple[VerifyReport, Checkpoint]:
    """The archive's verdict, and the checkpoint for the next build (see the module docstring)."""
    archive = Archive(location)
    try:
        data = archive.ledger.path.read_bytes()
    except OSError:
        data = b""
    if checkpoint.clean and not full:
        fast = _fast(archive, checkpoint, data)
        if fast is not None:
            return fast
    return _full(archive, checkpoint, data, full)
