"""The hash-chained, append-only ledger (``ledger.jsonl``) and its head anchor (``ledger.head``).

Each line is one archived run: ``seq``, ``run_id``, the run directory's ``path`` relative to the archive
root, the ``manifest_sha256`` of its ``run.json``, ``prev`` (the previous entry's ``hash``, or
``GENESIS``) and ``hash`` (sha256 of the canonical JSON of every other field). ``ledger.head`` holds
the entry count and the last hash, so that removing lines from the tail is detected, not only breaks
in the middle. Callers serialize writers (the archive holds ``ledger.lock``); this module does no
locking.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from runbooks.archive.canonical import canonical_json, sha256_hex

LEDGER_NAME = "ledger.jsonl"
HEAD_NAME = "ledger.head"
GENESIS = "0" * 64
#: a ledger line is a few hundred bytes; a longer one is garbage, reported without being held in memory
MAX_LINE_BYTES = 64 * 1024
_READ_CHUNK = 1 << 20


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    run_id: str
    path: str  #: run directory relative to the archive root, POSIX separators
    manifest_sha256: str
    prev: str
    hash: str

    @staticmethod
    def compute_hash(seq: int, run_id: str, path: str, manifest_sha256: str, prev: str) -> str:
        body = {"seq": seq, "run_id": run_id, "path": path, "manifest_sha256": manifest_sha256, "prev": prev}
        return sha256_hex(canonical_json(body))

    @classmethod
    def make(cls, seq: int, run_id: str, path: str, manifest_sha256: str, prev: str) -> LedgerEntry:
        return cls(
            seq=seq,
            run_id=run_id,
            path=path,
            manifest_sha256=manifest_sha256,
            prev=prev,
            hash=cls.compute_hash(seq, run_id, path, manifest_sha256, prev),
        )

    def expected_hash(self) -> str:
        return self.compute_hash(self.seq, self.run_id, self.path, self.manifest_sha256, self.prev)

    def line(self) -> bytes:
        return canonical_json(self.model_dump()) + b"\n"


class LedgerHead(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    hash: str


@dataclass(frozen=True)
class LedgerLine:
    """One physical line of the ledger as read back, parsed or not."""

    lineno: int  #: 1-based
    raw: bytes
    terminated: bool  #: ends with a newline (an unterminated last line is a partial write or a cut)
    entry: LedgerEntry | None
    error: str | None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename (never a torn file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def parse_line(lineno: int, raw: bytes, terminated: bool) -> LedgerLine:
    if not raw.lstrip().startswith(b"{"):  # cheap, for a ledger padded with garbage
        return LedgerLine(lineno, raw, terminated, None, "not a JSON object")
    try:
        entry = LedgerEntry.model_validate_json(raw)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return LedgerLine(lineno, raw, terminated, None, first)
    return LedgerLine(lineno, raw, terminated, entry, None)


def _line(lineno: int, buf: bytes, over: tuple[bytes, int] | None, terminated: bool) -> LedgerLine:
    if over is not None:
        return LedgerLine(
            lineno, over[0], terminated, None, f"a line of {over[1]} bytes (a ledger line is far shorter)"
        )
    return parse_line(lineno, buf, terminated)


class Ledger:
    """Reads and appends ``ledger.jsonl`` and maintains ``ledger.head`` under an archive root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / LEDGER_NAME
        self.head_path = root / HEAD_NAME

    # -- reading -------------------------------------------------------------------------------
    def lines(self) -> list[LedgerLine]:
        """Every physical line, in file order (empty if there is no ledger)."""
        return list(self.iter_lines())

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def iter_lines(self, limit: int | None = None) -> Iterator[LedgerLine]:
        """Every physical line in file order, streamed (memory bounded by :data:`MAX_LINE_BYTES`).

        ``limit``: read only the first ``limit`` bytes (a snapshot taken under the writer lock; the
        ledger is append-only). A line longer than :data:`MAX_LINE_BYTES` is yielded unparsed, with
        only its first bytes kept and an ``error`` saying how long it was.
        """
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed in the finally of this generator
        except FileNotFoundError:
            return
        try:
            left = limit if limit is not None else -1
            lineno = 0
            buf = b""  #: the current line so far, while it is short enough to be a ledger line
            over: tuple[bytes, int] | None = None  #: an overlong line: its first bytes and its length so far
            while True:
                n = _READ_CHUNK if left < 0 else min(_READ_CHUNK, left)
                chunk = f.read(n) if n else b""
                left -= len(chunk) if left >= 0 else 0
                if not chunk:
                    break
                start = 0
                while True:
                    nl = chunk.find(b"\n", start)
                    piece = chunk[start:] if nl == -1 else chunk[start:nl]
                    if over is not None:
                        over = (over[0], over[1] + len(piece))
                    elif len(buf) + len(piece) > MAX_LINE_BYTES:
                        over = ((buf + piece[:200])[:200], len(buf) + len(piece))
                        buf = b""
                    else:
                        buf += piece
                    if nl == -1:
                        break
                    lineno += 1
                    yield _line(lineno, buf, over, terminated=True)
                    buf, over, start = b"", None, nl + 1
            if buf or over is not None:
                yield _line(lineno + 1, buf, over, terminated=False)
        finally:
            f.close()

    def entries(self) -> list[LedgerEntry]:
        return [ln.entry for ln in self.lines() if ln.entry is not None]

    def read_head(self) -> LedgerHead | None:
        try:
            return LedgerHead.model_validate_json(self.head_path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError):
            return None

    def tail(self) -> tuple[LedgerEntry | None, bool]:
        """The last complete entry and whether an unterminated (partial) line follows it.

        Reads only the end of the file, so it stays cheap on a long ledger.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None, False
        if size == 0:
            return None, False
        chunk = 1 << 16
        with open(self.path, "rb") as f:
            while True:
                start = max(0, size - chunk)
                f.seek(start)
                data = f.read()
                partial = not data.endswith(b"\n")
                last_nl = data.rfind(b"\n")
                if last_nl == -1:
                    if start == 0:
                        return None, partial
                    chunk *= 4
                    continue
                body = data[:last_nl]
                prev_nl = body.rfind(b"\n")
                if prev_nl == -1 and start > 0:
                    chunk *= 4
                    continue
                last_raw = body[prev_nl + 1 :]
                break
        parsed = parse_line(0, last_raw, True)
        return parsed.entry, partial

    # -- writing (caller holds the archive lock) -----------------------------------------------
    def next_entry(self, run_id: str, path: str, manifest_sha256: str) -> LedgerEntry:
        """The entry that would chain ``run_id`` onto the ledger now.

        The head anchor is authoritative (so a cut tail shows up as a gap, not silently re-chained);
        without a head, the last complete line is used.
        """
        head = self.read_head()
        if head is not None:
            return LedgerEntry.make(head.count + 1, run_id, path, manifest_sha256, head.hash)
        last, _ = self.tail()
        if last is not None:
            return LedgerEntry.make(last.seq + 1, run_id, path, manifest_sha256, last.hash)
        return LedgerEntry.make(1, run_id, path, manifest_sha256, GENESIS)

    def drop_partial_tail(self, only_prefix_of: bytes | None = None) -> int:
        """Truncate an unterminated last line (a torn append); returns the bytes removed.

        With ``only_prefix_of``, only a partial line that is a prefix of that line is removed (so a
        crash's torn write is repaired but anything else is left for verify to report).
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        with open(self.path, "r+b") as f:
            f.seek(max(0, size - (1 << 20)))
            base = f.tell()
            data = f.read()
            if not data or data.endswith(b"\n"):
                return 0
            cut = base + data.rfind(b"\n") + 1 if b"\n" in data else base
            if only_prefix_of is not None and not only_prefix_of.startswith(data[cut - base :]):
                return 0
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
            return size - cut

    def append(self, entry: LedgerEntry) -> None:
        """Append one line (on a fresh line even if a stray partial line precedes) and fsync."""
        new = not self.path.exists()
        with open(self.path, "ab") as f:
            if f.tell() > 0:
                with open(self.path, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        f.write(b"\n")
            f.write(entry.line())
            f.flush()
            os.fsync(f.fileno())
        if new:
            fsync_dir(self.root)

    def write_head(self, entry: LedgerEntry) -> None:
        write_atomic(self.head_path, json.dumps({"count": entry.seq, "hash": entry.hash}).encode() + b"\n")
