"""Credential-looking strings, whoever produced them: what :func:`scrub_patterns` recognises.

Recognised (the secret part becomes ``[REDACTED]``, the context stays readable):

- PEM private keys (``-----BEGIN ... PRIVATE KEY-----`` up to its END line, or to the end of the text);
- age identities (``AGE-SECRET-KEY-1...``);
- AWS access key ids (``AKIA``/``ASIA``/... + 16 upper-case letters or digits) and AWS secret access keys:
  40 characters of ``[A-Za-z0-9/+]`` with upper and lower case and a digit or ``/``/``+``, within
  200 characters of a hint (``aws``, ``secret``, ``access key``, ``credential`` or an access key id);
- Supabase ``sb_secret_``/``sb_publishable_`` keys, JWTs (``eyJ...`` with a dot), ``Bearer`` tokens;
- the password of a URL/DSN (``scheme://user:PASSWORD@host``, also with an unencoded ``@`` in it);
- password assignments: ``PGPASSWORD=``, ``*_PASSWORD=`` / ``*_PASSWD=``, ``password=``, ``password:``,
  ``"password": "..."`` (a value of at least 4 characters, quoted or up to the next space, quote,
  ``,;&)]}``), and SQL's ``PASSWORD '...'``.

Not recognised: placeholders (``None``, ``null``, ``str``, ``***``, ``{password}``, ``$VAR``, ``%s``,
an already redacted value), a password under another name (``secret=``, ``token=``: register the value
instead), a 40-character AWS secret with no hint nearby. Every pattern is anchored so that a failed
attempt never rescans the same run of characters: scrubbing is linear in the size of the text.
"""

from __future__ import annotations

import bisect
import re
import string

MARKER = "[REDACTED]"

_PASSWORD_KEY = r"(?:[A-Za-z0-9]+_)*(?:PG)?PASS(?:WORD|WD)"
#: placeholders and code, not passwords (compared lower-case)
_NOT_A_PASSWORD = frozenset(
    {"none", "null", "nil", "true", "false", "str", "string", "bytes", "optional", "required", "password",
     "passwd", "pwd", "secret", "empty", "unset", "redacted", "hidden", "masked"}
)  # fmt: skip
_PLACEHOLDER_START = (
    "{",
    "$",
    "%",
    "<",
    "[redacted",
    "***",
    "•",
    "xxxx",
    "optional[",
    "getpass",
    "os.environ",
    "runbooks.",
)

# Patterns start with a literal (so the regex engine can skip to it) and check what precedes a match in
# Python; case-insensitive ones run on a lower-cased copy of the text (same length, same offsets).
# Each pattern's group "s" (or the whole match) is the span to replace; "b" names the characters that
# must not come just before the match.
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ON_TEXT: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys (also truncated ones: up to END or the end of the string)
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
        ),
        "",
    ),
    (re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Zac-hj-np-z]{10,}"), ""),
    (re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"), _ALNUM),
    (re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{8,}"), _ALNUM + "_"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)?"), _ALNUM + "_-"),
    # scheme://user:PASSWORD@host: the password runs to the *last* @ of the authority (an unencoded @ in
    # it); not a template placeholder such as {password}
    (re.compile(r"://[^\s/:@'\"]*:(?P<s>(?!\{)[^\s/'\"]+)@"), ""),
]
_ON_LOWER: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"bearer\s+(?P<s>[A-Za-z0-9\-._~+/]{12,}=*)"), _ALNUM),
    # SQL: CREATE/ALTER ROLE ... PASSWORD 'value'
    (re.compile(r"password\s+'(?P<s>[^'\n]{4,})'"), _ALNUM + "_"),
]
# NAME=value / name: value / "name": "value" (PGPASSWORD, DB_PASSWORD, password...; quoted values may hold spaces)
_ASSIGNMENT = re.compile(
    r"""pass(?:word|wd)['"]?[ \t]*[=:][ \t]*"""
    r"""(?:(?P<q>['"])(?P<qs>[^'"\n]{4,}?)(?P=q)|(?P<s>[^\s'",;&)\]}]{4,}))"""
)
_AWS_HINTS = ("aws", "secret", "access", "credential", "akia", "asia")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_AWS_WINDOW = 200
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _looks_like_aws_secret(tok: str) -> bool:
    # excludes hex digests (git shas) and plain words: needs upper and lower case letters and a digit or symbol
    return (
        any(c.isupper() for c in tok) and any(c.islower() for c in tok) and any(c.isdigit() or c in "/+" for c in tok)
    )


def _span(m: re.Match[str], group: str = "s") -> tuple[int, int]:
    if group in (m.re.groupindex or {}) and m.group(group) is not None:
        return m.span(group)
    return m.span()


def _is_placeholder(value: str) -> bool:
    low = value.lower()
    return low in _NOT_A_PASSWORD or low.startswith(_PLACEHOLDER_START) or set(low) <= {"*", "x", "•", "."}


def _lowered(text: str) -> str:
    """A lower-cased copy with the same offsets (only ASCII is lowered when ``str.lower`` changes the length)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


def _pattern_spans(text: str, search: str, patterns: list[tuple[re.Pattern[str], str]]) -> list[tuple[int, int]]:
    spans = []
    for pattern, not_after in patterns:
        for m in pattern.finditer(search):
            if not_after and m.start() > 0 and text[m.start() - 1] in not_after:
                continue
            spans.append(_span(m))
    return spans


def _assignment_spans(text: str, search: str) -> list[tuple[int, int]]:
    spans = []
    for m in _ASSIGNMENT.finditer(search):
        group = "qs" if m.group("qs") is not None else "s"
        a, b = m.span(group)
        if not _is_placeholder(text[a:b]):
            spans.append((a, b))
    return spans


def _aws_spans(text: str, low: str) -> list[tuple[int, int]]:
    hints = sorted(m.start() for hint in _AWS_HINTS for m in re.finditer(hint, low))
    if not hints:
        return []
    spans = []
    lo = hi = -1
    windows: list[tuple[int, int]] = []  # merged [hint - window - 41, hint + window + 41] ranges
    for h in hints:
        a, b = max(0, h - _AWS_WINDOW - 41), min(len(text), h + _AWS_WINDOW + 41)
        if a <= hi:
            hi = max(hi, b)
        else:
            if hi >= 0:
                windows.append((lo, hi))
            lo, hi = a, b
    windows.append((lo, hi))
    for a, b in windows:
        for m in _AWS_SECRET.finditer(text, a, b):
            if not _looks_like_aws_secret(m.group("s")):
                continue
            i = bisect.bisect_left(hints, m.start() - _AWS_WINDOW)  # the first hint at most a window before
            if i < len(hints) and hints[i] <= m.start() + _AWS_WINDOW:
                spans.append(m.span("s"))
    return spans


def credential_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans of ``text`` that look like credentials (see the module doc)."""
    low = _lowered(text)
    raw = _pattern_spans(text, low, _ON_LOWER) + _assignment_spans(text, low)
    raw += _pattern_spans(text, text, _ON_TEXT) + _aws_spans(text, low)
    merged: list[tuple[int, int]] = []
    for a, b in sorted(raw):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def scrub_patterns(text: str) -> str:
    """Replace credential-looking substrings of ``text`` with the marker (see the module doc)."""
    spans = credential_spans(text)
    if not spans:
        return text
    out, last = [], 0
    for a, b in spans:
        out += [text[last:a], MARKER]
        last = b
    out.append(text[last:])
    return "".join(out)
