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

# Each pattern's group "s" (or the whole match) is replaced by the marker.
_PATTERNS: list[re.Pattern[str]] = [
    # PEM private keys (also truncated ones: up to END or the end of the string)
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"),
    re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Zac-hj-np-z]{10,}"),
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    re.compile(r"(?<![A-Za-z0-9_])sb_(?:secret|publishable)_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)?"),
    re.compile(r"(?i)(?<![A-Za-z])bearer\s+(?P<s>[A-Za-z0-9\-._~+/]{12,}=*)"),
    # scheme://user:PASSWORD@host: the password runs to the *last* @ of the authority (an unencoded @ in
    # it); not a template placeholder such as {password}
    re.compile(r"(?i)(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://[^\s/:@'\"]*:(?P<s>(?!\{)[^\s/'\"]+)@"),
    # SQL: CREATE/ALTER ROLE ... PASSWORD 'value'
    re.compile(r"(?i)(?<![A-Za-z0-9_])PASSWORD\s+'(?P<s>[^'\n]{4,})'"),
]
# NAME=value / name: value / "name": "value" (quoted values may hold spaces)
_ASSIGNMENT = re.compile(
    r"(?i)(?<![A-Za-z0-9_])" + _PASSWORD_KEY + r"""['"]?[ \t]*[=:][ \t]*"""
    r"""(?:(?P<q>['"])(?P<qs>[^'"\n]{4,}?)(?P=q)|(?P<s>[^\s'",;&)\]}]{4,}))"""
)
_AWS_HINT = re.compile(
    r"(?i)aws|secret|access.?key|credential|(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_AWS_WINDOW = 200


def _looks_like_aws_secret(tok: str) -> bool:
    # excludes hex digests (git shas) and plain words: needs upper and lower case letters and a digit or symbol
    return (
        any(c.isupper() for c in tok) and any(c.islower() for c in tok) and any(c.isdigit() or c in "/+" for c in tok)
    )


def _replace_group(m: re.Match[str], group: str) -> str:
    a, b = m.span(group)
    start = m.start()
    return m.group(0)[: a - start] + MARKER + m.group(0)[b - start :]


def _sub(pattern: re.Pattern[str], text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if "s" in pattern.groupindex and m.group("s") is not None:
            return _replace_group(m, "s")
        return MARKER

    return pattern.sub(repl, text)


def _is_placeholder(value: str) -> bool:
    low = value.lower()
    return low in _NOT_A_PASSWORD or low.startswith(_PLACEHOLDER_START) or set(low) <= {"*", "x", "•", "."}


def _assignment(m: re.Match[str]) -> str:
    group = "qs" if m.group("qs") is not None else "s"
    if _is_placeholder(m.group(group)):
        return m.group(0)
    return _replace_group(m, group)


def _aws_secrets(text: str) -> str:
    hints = [m.start() for m in _AWS_HINT.finditer(text)]
    if not hints:
        return text

    def near(m: re.Match[str]) -> str:
        tok = m.group("s")
        if not _looks_like_aws_secret(tok):
            return tok
        i = bisect.bisect_left(hints, m.start() - _AWS_WINDOW)  # the first hint at most a window before
        if i < len(hints) and hints[i] <= m.start() + _AWS_WINDOW:
            return MARKER
        return tok

    return _AWS_SECRET.sub(near, text)


def scrub_patterns(text: str) -> str:
    """Replace credential-looking substrings of ``text`` with the marker (see the module doc)."""
    for p in _PATTERNS:
        text = _sub(p, text)
    text = _ASSIGNMENT.sub(_assignment, text)
    return _aws_secrets(text)
