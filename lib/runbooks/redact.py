"""Scrubbing of secret values and credential-looking strings.

A :class:`Redactor` knows two kinds of things to remove:

- **registered values**: every value :func:`runbooks.secret` resolved (in this process, or in the
  kernel, which tells the runner through its channel). Each value is also searched for in the forms
  it takes once rendered: HTML-escaped (DataFrame HTML), JSON-escaped, ``repr``-escaped and
  URL-quoted; and a prefix of at least 12 characters of the value or of any of these forms, followed
  by an ellipsis (``...`` or ``…``), is treated as the value truncated by a table renderer (pandas,
  rich). Values shorter than :data:`MIN_SECRET_LENGTH` (8) characters are *not* registered: they would
  match too much ordinary text. Keep real credentials longer than that.
- **credential-looking patterns**, whoever produced them: AWS access key ids (``AKIA``/``ASIA``...),
  40-character AWS secret keys near an AWS hint, Supabase ``sb_secret_``/``sb_publishable_`` keys,
  JWTs (``eyJ...``), PEM private keys, ``AGE-SECRET-KEY-1...`` identities, ``Bearer`` tokens and
  passwords in URLs/DSNs (``postgresql://user:PASSWORD@host``) or ``password=...`` conninfo.

Registered values become ``[REDACTED:<reference>]`` (the reference, e.g. ``env:DB_URL``, is not a
secret), patterns become ``[REDACTED]``. What is not recognised: a value transformed beyond the forms
above (base64-encoded, split across lines, reversed...). Never print secrets; show
:func:`runbooks.secrets.fingerprint` instead.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

MARKER = "[REDACTED]"
MIN_SECRET_LENGTH = 8
_TRUNCATED_MIN = 12
_ELLIPSES = ("...", "…")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# --- credential-looking patterns --------------------------------------------------------------------
# Each pattern's group "s" (or the whole match) is replaced by the marker.
_PATTERNS: list[re.Pattern[str]] = [
    # PEM private keys (also truncated ones: up to END or the end of the string)
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"),
    re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Zac-hj-np-z]{10,}"),
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)?"),
    re.compile(r"(?i)(?<![A-Za-z])bearer\s+(?P<s>[A-Za-z0-9\-._~+/]{12,}=*)"),
    # scheme://user:PASSWORD@host (not a template placeholder such as {password})
    re.compile(r"(?i)[a-z][a-z0-9+.\-]*://[^\s/:@'\"]*:(?P<s>(?!\{)[^\s@/'\"]+)@"),
    # libpq conninfo / key=value style
    re.compile(r"(?i)(?<![A-Za-z_])(?:password|passwd)=(?P<s>[^\s'\"&;,()]{8,})"),
]
_AWS_HINT = re.compile(r"(?i)aws|secret.?access|(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_AWS_WINDOW = 200


def _looks_like_aws_secret(tok: str) -> bool:
    # excludes hex digests (git shas) and plain words: needs upper and lower case letters and a digit or symbol
    return (
        any(c.isupper() for c in tok) and any(c.islower() for c in tok) and any(c.isdigit() or c in "/+" for c in tok)
    )


def _sub_group(pattern: re.Pattern[str], text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if "s" in pattern.groupindex and m.group("s") is not None:
            a, b = m.span("s")
            start = m.start()
            return m.group(0)[: a - start] + MARKER + m.group(0)[b - start :]
        return MARKER

    return pattern.sub(repl, text)


def scrub_patterns(text: str) -> str:
    """Replace credential-looking substrings of ``text`` with the marker."""
    for p in _PATTERNS:
        text = _sub_group(p, text)
    hints = [m.start() for m in _AWS_HINT.finditer(text)]
    if hints:

        def near(m: re.Match[str]) -> str:
            tok = m.group("s")
            if _looks_like_aws_secret(tok) and any(abs(h - m.start()) <= _AWS_WINDOW for h in hints):
                return MARKER
            return tok

        text = _AWS_SECRET.sub(near, text)
    return text


def _variants(value: str) -> set[str]:
    out = {
        value,
        html.escape(value, quote=False),
        html.escape(value),
        json.dumps(value)[1:-1],
        repr(value)[1:-1],
        quote(value, safe=""),
        quote(value, safe="/:@"),
    }
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


class Redactor:
    """Registered secret values plus credential patterns; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}  # value -> label (the secret reference)
        self._needles: list[tuple[str, str]] = []  # (variant, marker), longest first
        #: every rendered form of every value with its marker, for the search of a truncated prefix
        self._forms: list[tuple[str, str]] = []
        self.listeners: list[Callable[[str, str], None]] = []

    # -- registration ---------------------------------------------------------------------------
    def register(self, value: str, label: str = "") -> bool:
        """Remember ``value`` (a secret); returns False when it is too short to be registered."""
        if not isinstance(value, str):
            value = str(value)
        value = value.strip("\r\n")
        if len(value) < MIN_SECRET_LENGTH:
            return False
        with self._lock:
            if value in self._values:
                return True
            self._values[value] = label
            marker = f"[REDACTED:{label}]" if label and _safe_label(label) else MARKER
            needles = dict(self._needles)
            variants = _variants(value) | {value}
            for v in variants:
                needles.setdefault(v, marker)
            self._needles = sorted(needles.items(), key=lambda kv: -len(kv[0]))
            forms = dict(self._forms)
            for v in sorted(variants):
                if len(v) > _TRUNCATED_MIN:
                    forms.setdefault(v, marker)
            self._forms = list(forms.items())
        for fn in list(self.listeners):
            fn(value, label)
        return True

    def update(self, other: Redactor) -> None:
        for value, label in other.items():
            self.register(value, label)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._values.items())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    # -- scrubbing ------------------------------------------------------------------------------
    def _scrub_values(self, text: str) -> str:
        with self._lock:
            needles, forms = self._needles, self._forms
        for needle, marker in needles:
            if needle in text:
                text = text.replace(needle, marker)
        # a prefix of a registered value, or of one of its escaped forms (a pandas HTML cell is cut, then
        # escaped: "abcdefghij&amp;kl..."), cut by a table renderer: "abcdefghijkl..." / "abcdefghijkl…"
        for value, marker in forms:
            head = value[:_TRUNCATED_MIN]
            start = text.find(head)
            while start >= 0:
                k = _TRUNCATED_MIN
                while start + k < len(text) and k < len(value) and text[start + k] == value[k]:
                    k += 1
                rest = text[start + k :]
                if rest.startswith(_ELLIPSES):
                    text = text[:start] + marker + rest
                    start = text.find(head, start + len(marker))
                else:
                    start = text.find(head, start + 1)
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

    def scrub_values(self, text: str) -> str:
        """Only the registered values (safe on serialized JSON: markers hold no quote or backslash)."""
        return self._scrub_values(text)

    def contains_secret(self, text: str) -> bool:
        """True if ``text`` still holds a registered value (or one of its rendered forms)."""
        return any(needle in text for needle, _ in self._needles)

    def scrub_obj(self, obj: Any) -> Any:
        """Scrub every string (values and keys) in nested dicts/lists; other scalars are kept."""
        if isinstance(obj, str):
            return self.scrub(obj)
        if isinstance(obj, dict):
            return {(self.scrub(k) if isinstance(k, str) else k): self.scrub_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.scrub_obj(v) for v in obj]
        return obj

    def scrub_notebook(self, nb: Any) -> Any:
        """Scrub a notebook in place (and return it): sources, every output, all metadata."""
        _scrub_in_place(nb, self.scrub)
        return nb


def _safe_label(label: str) -> bool:
    return len(label) <= 120 and "]" not in label and "\n" not in label


def _scrub_in_place(node: Any, scrub: Callable[[str], str]) -> None:
    """Walk dicts/lists (NotebookNode is a dict) and scrub every string, keys included."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            value = node[key]
            new_key = scrub(key) if isinstance(key, str) else key
            if isinstance(value, str):
                value = scrub(value)
            else:
                _scrub_in_place(value, scrub)
            if new_key != key:
                del node[key]
            node[new_key] = value
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                node[i] = scrub(value)
            else:
                _scrub_in_place(value, scrub)


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


def scrub_notebook(nb: Any, redactor: Redactor | None = None) -> Any:
    """Scrub every string anywhere in ``nb`` (in place) with ``redactor`` (default: this process's)."""
    return (redactor or _default).scrub_notebook(nb)
