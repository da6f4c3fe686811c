"""Scrubbing of secret values and credential-looking strings (what the archive may hold).

A :class:`Redactor` removes two kinds of things:

- **registered values**: every value :func:`runbooks.secret` resolved (in this process, or in the
  kernel, which tells the runner through its channel), searched for in every form it takes once
  rendered (:func:`runbooks.redact_forms.rendered_forms`: HTML/XML entities, JSON, ``repr``, ``ascii()``
  and bytes escapes, URL and form encoding, thousands separators, each line of a multi-line value).
  A value **cut short** is recognised too: at least :data:`CUT_MIN` (12) characters of the start of a
  form followed by the end of the string, an ellipsis (``...``, ``…``) or a cut marker (a bracket
  holding ``truncated``, ``cut``, ``omitted``...), and at least 12 characters of the end of a form at
  the start of the string or after an ellipsis (``reprlib``'s middle cut). Numbers (ints, floats) whose
  digits hold a registered value become the marker string. Values shorter than
  :data:`MIN_SECRET_LENGTH` (8) characters are *not* registered: they would match too much text.
- **credential-looking patterns**, whoever produced them: see :mod:`runbooks.redact_patterns`.

Registered values become ``[REDACTED:<reference>]`` (the reference, e.g. ``env:DB_URL``, is not a
secret), patterns ``[REDACTED]``. In a notebook, consecutive stream outputs of a cell are scrubbed as
the reader sees them, joined (:meth:`Redactor.scrub_notebook`). Whatever is cut for storage must be cut
*after* scrubbing (:meth:`Redactor.cut`). Scrubbing is linear in the size of the text: every search is
one pass of a trie-shaped regular expression, and replacements are assembled once.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from runbooks.redact_forms import literal_regex, rendered_forms
from runbooks.redact_patterns import MARKER, scrub_patterns

__all__ = ["CUT_MIN", "MARKER", "MIN_SECRET_LENGTH", "NOT_RECORDED", "Redactor", "scrub_patterns"]

MIN_SECRET_LENGTH = 8
#: characters of a value a cut must keep (at its start or its end) to be recognised as that value
CUT_MIN = 12
#: what the record holds instead of a parameter's value that was refused (it may be a pasted secret)
NOT_RECORDED = "[not recorded]"
#: label prefix of a refused parameter's value (``refused:<name>``), see :meth:`Redactor.register`
REFUSED_LABEL = "refused:"
#: a refused value shorter than this is only withheld from the record, not searched for in the outputs
WITHHELD_MIN = 4
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: what may follow a value cut short: an ellipsis, or a cut marker (after optional blanks and one newline)
_CUT_AFTER = re.compile(
    r"[ \t]*(?:\r?\n)?[ \t]*(?:\.\.\.|…|[\[(<][^\]\)>\n]{0,80}?(?i:truncat|cut|omit|elid|limit|cap|skip|more))"
)
#: the first character of anything :data:`_CUT_AFTER` accepts
_MAY_CUT = re.compile(r"[.…\[(<]")
_ELLIPSIS = re.compile(r"\.\.\.|…")
#: notebook fields that nbformat's schema types as integers: never turned into a marker string
_INT_FIELDS = frozenset({"execution_count", "nbformat", "nbformat_minor"})


def _common_prefix(text: str, at: int, form: str) -> int:
    """How many leading characters of ``form`` ``text`` holds at ``at`` (binary search on slices)."""
    n = min(len(form), len(text) - at)
    if text.startswith(form[:n], at):
        return n
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if text.startswith(form[:mid], at):
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(text: str, end: int, form: str) -> int:
    """How many trailing characters of ``form`` ``text`` holds just before ``end``."""
    n = min(len(form), end)
    if text.endswith(form[len(form) - n :], 0, end):
        return n
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if text.endswith(form[len(form) - mid :], 0, end):
            lo = mid
        else:
            hi = mid
    return lo


def _assemble(text: str, spans: list[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    out, last = [], 0
    for start, end, marker in spans:
        out += [text[last:start], marker]
        last = end
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class _Index:
    """Search structures for the registered forms (rebuilt lazily after a registration).

    One trie-shaped regex finds every *start*: the first :data:`CUT_MIN` characters of a form (its head)
    or a whole shorter form; each hit is compared with the forms that start that way (a whole form is
    replaced; a form cut short is replaced if the string ends or a cut marker follows). A form's *end*
    whose start was cut off (``...tail``) is only looked for at the start of the string and after an
    ellipsis, with a regex of tails."""

    markers: dict[str, str]  #: form -> marker
    starts: re.Pattern[str]
    candidates: dict[str, list[str]]  #: head or short form -> the forms it may start, longest first
    tails: dict[str, list[str]]  #: last CUT_MIN characters -> forms longer than that
    tail_re: re.Pattern[str] | None
    longest: int

    @classmethod
    def build(cls, markers: dict[str, str]) -> _Index:
        candidates: dict[str, list[str]] = {}
        tails: dict[str, list[str]] = {}
        short = [f for f in markers if len(f) <= CUT_MIN]
        for form in markers:
            if len(form) > CUT_MIN:
                candidates.setdefault(form[:CUT_MIN], []).append(form)
                tails.setdefault(form[-CUT_MIN:], []).append(form)
        for form in short:
            candidates.setdefault(form, []).append(form)
        for head, forms in candidates.items():  # a short form that starts a head is found through the head
            forms += [f for f in short if f != head and head.startswith(f)]
            forms.sort(key=len, reverse=True)
        return cls(
            markers=markers,
            starts=re.compile(literal_regex(candidates)),
            candidates=candidates,
            tails=tails,
            tail_re=re.compile(literal_regex(tails)) if tails else None,
            longest=max(len(f) for f in markers),
        )


def _starts(idx: _Index, text: str) -> list[tuple[int, int, str]]:
    """Spans of whole forms, and of forms cut short (end of string, an ellipsis or a cut marker after)."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    search = idx.starts.search
    while (m := search(text, pos)) is not None:
        start = m.start()
        candidates = idx.candidates[m.group()]
        whole = next((f for f in candidates if text.startswith(f, start)), None)  # longest first
        if whole is not None:
            spans.append((start, start + len(whole), idx.markers[whole]))
            pos = start + len(whole)
            continue
        best: tuple[int, str] | None = None  # the form this is the longest cut of
        reach = start + len(candidates[0]) + 16  # room for the blanks and newline before a cut marker
        if reach < len(text) and not _MAY_CUT.search(text, start + CUT_MIN, reach):
            pos = start + 1  # no ellipsis or marker within reach, and the string goes on: not a cut
            continue
        for form in candidates:
            k = _common_prefix(text, start, form)
            if k >= CUT_MIN and (best is None or k > best[0]):
                best = (k, form)
        if best is not None:
            end = start + best[0]
            if end == len(text) or _CUT_AFTER.match(text, end):
                spans.append((start, end, idx.markers[best[1]]))
                pos = end
                continue
        pos = start + 1
    return spans


def _tails(idx: _Index, text: str) -> list[tuple[int, int, str]]:
    """Spans of a form's end whose start was cut off: at the start of the string or after an ellipsis."""
    assert idx.tail_re is not None
    spans: list[tuple[int, int, str]] = []
    last = 0
    for origin in [0] + [m.end() for m in _ELLIPSIS.finditer(text)]:
        if origin < last:
            continue
        for m in idx.tail_re.finditer(text, origin, min(len(text), origin + idx.longest + 8)):
            end = m.end()
            for form in idx.tails[m.group()]:
                start = end - _common_suffix(text, end, form)
                if start >= origin and not text[origin:start].strip(" \t"):
                    spans.append((start, end, idx.markers[form]))
                    last = end
                    break
            if last == end:
                break
    return spans


class Redactor:
    """Registered secret values plus credential patterns; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}  # value -> label (the secret reference)
        self._markers: dict[str, str] = {}  # every form of every value -> its marker
        self._index: _Index | None = None
        #: parameter name -> the value a runbook refused (``refused:<name>``): never recorded
        self.withheld: dict[str, str] = {}
        self.listeners: list[Callable[[str, str], None]] = []

    # -- registration ---------------------------------------------------------------------------
    def register(self, value: str, label: str = "") -> bool:
        """Remember ``value`` (a secret); returns False when it is too short to be registered.

        A label ``refused:<name>`` marks the value of parameter ``name`` that a runbook refused: it is
        withheld from the record (:meth:`withhold`) whatever its length, and scrubbed if long enough."""
        if not isinstance(value, str):
            value = str(value)
        if label.startswith(REFUSED_LABEL):
            with self._lock:
                self.withheld[label[len(REFUSED_LABEL) :]] = value
        value = value.strip("\r\n")
        if len(value.strip()) < MIN_SECRET_LENGTH:
            return False
        with self._lock:
            if value in self._values:
                return True
            self._values[value] = label
            marker = f"[REDACTED:{label}]" if label and _safe_label(label) else MARKER
            for form in sorted(rendered_forms(value, MIN_SECRET_LENGTH)):
                self._markers.setdefault(form, marker)
            self._index = None
        for fn in list(self.listeners):
            fn(value, label)
        return True

    def update(self, other: Redactor) -> None:
        """Register ``other``'s values (not its withheld parameters: those belong to one run)."""
        for value, label in other.items():
            self.register(value, label)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._values.items())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def _current(self) -> _Index | None:
        with self._lock:
            if self._index is None and self._markers:
                self._index = _Index.build(dict(self._markers))
            return self._index

    # -- scrubbing ------------------------------------------------------------------------------
    def _scrub_values(self, text: str) -> str:
        idx = self._current()
        if idx is None or not text:
            return text
        text = _assemble(text, _starts(idx, text))
        if idx.tail_re is not None and ("..." in text or "…" in text or idx.tail_re.match(text)):
            text = _assemble(text, _tails(idx, text))
        return text

    def scrub(self, text: str) -> str:
        """``text`` without any registered value or credential-looking string."""
        if not text:
            return text
        out = scrub_patterns(self._scrub_values(text))
        if "\x1b[" in out:
            # colour codes can split a value (syntax-highlighted tracebacks): if the plain text still
            # holds something, give up the colours rather than the secret
            plain = _ANSI.sub("", out)
            cleaned = scrub_patterns(self._scrub_values(plain))
            if cleaned != plain:
                out = cleaned
        return out

    def cut(self, text: str, limit: int, marker: str = " ...(truncated)") -> str:
        """``text`` scrubbed, *then* cut to at most ``limit`` characters (ending with ``marker``): a cut for
        storage can never keep a part of a secret too short to be recognised."""
        text = self.scrub(text)
        if len(text) <= limit:
            return text
        return text[: max(0, limit - len(marker))] + marker

    def scrub_values(self, text: str) -> str:
        """Only the registered values, in serialized text such as a whole notebook file. JSON is scrubbed as
        data (a number holding a value becomes the marker string) and written back, so it stays valid JSON."""
        if self._current() is None:
            return text
        try:
            data = json.loads(text)
        except ValueError:
            return self._scrub_values(text)
        _scrub_in_place(data, lambda v: self._scrub_values(v) if isinstance(v, str) else self._scrub_number(v))
        return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    def contains_secret(self, text: str) -> bool:
        """True if ``text`` still holds a registered value (or one of its rendered forms)."""
        idx = self._current()
        return idx is not None and bool(_starts(idx, text))

    def _scrub_scalar(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        return self._scrub_number(value)

    def _scrub_number(self, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and self._markers:
            digits = repr(value)
            scrubbed = self._scrub_values(digits)
            return value if scrubbed == digits else scrubbed
        return value

    def scrub_obj(self, obj: Any) -> Any:
        """Scrub every string (values and keys) in nested dicts/lists, and every number holding a
        registered value (it becomes the marker string); other scalars are kept."""
        if isinstance(obj, dict):
            return {self._scrub_scalar(k): self.scrub_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.scrub_obj(v) for v in obj]
        return self._scrub_scalar(obj)

    def withhold(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` with the value of every refused parameter replaced by :data:`NOT_RECORDED`."""
        return {k: (NOT_RECORDED if k in self.withheld else v) for k, v in parameters.items()}

    def scrub_notebook(self, nb: Any) -> Any:
        """Scrub a notebook in place (and return it): sources, every output, all metadata. Consecutive
        stream outputs of a cell are judged as the reader sees them (joined); refused parameters' values
        are withheld from the injected parameters and papermill's metadata."""
        self._withhold_in_notebook(nb)
        for cell in nb.get("cells", []):
            outputs = cell.get("outputs")
            if isinstance(outputs, list) and len(outputs) > 1:
                cell["outputs"] = self._scrub_streams(outputs)
        _scrub_in_place(nb, self._scrub_scalar)
        return nb

    def _scrub_streams(self, outputs: list[Any]) -> list[Any]:
        """Merge runs of consecutive stream outputs of the same name (as Jupyter shows them); a run of
        stdout and stderr outputs across which a secret only shows once joined becomes one output."""
        merged: list[Any] = []
        texts: list[list[str]] = []  # the texts of each merged stream output, joined once (linear)
        for out in outputs:
            prev = merged[-1] if merged else None
            if _is_stream(out) and _is_stream(prev) and out.get("name") == prev.get("name"):
                texts[-1].append(_text(out))
            else:
                merged.append(out)
                texts.append([_text(out)] if _is_stream(out) else [])
        for out, parts in zip(merged, texts, strict=True):
            if len(parts) > 1:
                out["text"] = "".join(parts)
        result: list[Any] = []
        run: list[Any] = []
        for out in [*merged, None]:
            if out is not None and _is_stream(out):
                run.append(out)
                continue
            if len(run) > 1:
                joined = self.scrub("".join(_text(o) for o in run))
                pieces = [self.scrub(_text(o)) for o in run]
                if joined == "".join(pieces):
                    for o, piece in zip(run, pieces, strict=True):
                        o["text"] = piece
                else:
                    run[0]["text"] = joined
                    run = run[:1]
            result += run
            run = []
            if out is not None:
                result.append(out)
        return result

    def _withhold_in_notebook(self, nb: Any) -> None:
        if not self.withheld:
            return
        short = {v: n for n, v in self.withheld.items() if WITHHELD_MIN <= len(v) < MIN_SECRET_LENGTH}
        if short:  # too short to scrub everywhere: scrubbed as a whole word in the outputs (the notebook printed it)
            words = "|".join(re.escape(v) for v in sorted(short, key=len, reverse=True))
            word = re.compile(rf"(?<![A-Za-z0-9_])(?:{words})(?![A-Za-z0-9_])")

            def hide(v: Any) -> Any:
                if not isinstance(v, str):
                    return v
                return word.sub(lambda m: f"[REDACTED:{REFUSED_LABEL}{short[m.group()]}]", v)

            for cell in nb.get("cells", []):
                _scrub_in_place(cell.get("outputs", []), hide)
        meta = nb.get("metadata", {}).get("papermill", {}).get("parameters")
        if isinstance(meta, dict):
            for name in self.withheld:
                if name in meta:
                    meta[name] = NOT_RECORDED
        for cell in nb.get("cells", []):
            if "injected-parameters" not in (cell.get("metadata", {}).get("tags") or []):
                continue
            lines = str(cell.get("source", "")).splitlines(keepends=True)
            for i, line in enumerate(lines):
                name = line.split("=", 1)[0].strip()
                if name in self.withheld:
                    lines[i] = f"{name} = {NOT_RECORDED!r}\n"
            cell["source"] = "".join(lines)


def _is_stream(out: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(out, dict) and out.get("output_type") == "stream"


def _text(out: Any) -> str:
    text = out.get("text", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _safe_label(label: str) -> bool:
    return len(label) <= 120 and "]" not in label and "\n" not in label


def _scrub_in_place(node: Any, scrub: Callable[[Any], Any]) -> None:
    """Walk dicts/lists (NotebookNode is a dict) and scrub every string and number, keys included."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            value = node[key]
            new_key = scrub(key) if isinstance(key, str) else key
            if isinstance(value, dict | list):
                _scrub_in_place(value, scrub)
            elif key not in _INT_FIELDS or isinstance(value, str):
                value = scrub(value)
            if new_key != key:
                del node[key]
            node[new_key] = value
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                _scrub_in_place(value, scrub)
            else:
                node[i] = scrub(value)


# --- the process-wide registry ---------------------------------------------------------------------
_default = Redactor()


def default_redactor() -> Redactor:
    """The redactor of this process: every value ``runbooks.secret`` resolved here is in it."""
    return _default


def register(value: str, label: str = "") -> bool:
    return _default.register(value, label)


def scrub(text: str) -> str:
    return _default.scrub(text)


def scrub_obj(obj: Any) -> Any:
    return _default.scrub_obj(obj)


def cut(text: str, limit: int, marker: str = " ...(truncated)") -> str:
    """``text`` scrubbed with this process's redactor, *then* cut to ``limit`` characters: use it wherever
    a message is shortened (a vendor's error body, a state file's last error), never ``text[:limit]``."""
    return _default.cut(text, limit, marker)


def scrub_notebook(nb: Any, redactor: Redactor | None = None) -> Any:
    """Scrub every string anywhere in ``nb`` (in place) with ``redactor`` (default: this process's)."""
    return (redactor or _default).scrub_notebook(nb)
