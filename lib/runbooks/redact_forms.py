"""The forms a secret value takes once a program renders it, and a fast matcher for many literals.

:func:`rendered_forms` lists what the standard library, pandas, IPython and requests make of a value
without being asked to transform it: HTML/XML escapes (named and numeric entities, both quote styles),
JSON and ``repr``/``ascii()`` escapes, the ``repr`` of its UTF-8 bytes, URL quoting (``quote``,
``quote_plus`` as used by ``urlencode`` and requests' ``params=``, requests' re-quoting of a URL),
thousands separators of a numeric value, and every line of a multi-line value (a PEM file, a
two-line file) on its own and its lines joined by spaces or by nothing. :func:`literal_regex` compiles
a set of literals into one regular expression shaped like a trie, so that searching for all of them is
one linear pass over the text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: characters requests leaves alone when it re-quotes a URL (``requests.utils.requote_uri``)
_REQUESTS_SAFE = "!#$%&'()*+,/:;=?@[]~"
_APOSTROPHES = ("'", "&#x27;", "&#39;", "&apos;")
_DOUBLE_QUOTES = ('"', "&quot;", "&#34;", "&#x22;")


def _html_forms(value: str) -> set[str]:
    base = html.escape(value, quote=False)
    out = {base.replace("'", apos).replace('"', dquote) for apos in _APOSTROPHES for dquote in _DOUBLE_QUOTES}
    # numeric character references for non-ASCII characters (xmlcharrefreplace), escaped or not
    out |= {v.encode("ascii", "xmlcharrefreplace").decode("ascii") for v in (value, *out)}
    return out


def _escape_forms(value: str) -> set[str]:
    return {
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        ascii(value)[1:-1],
        repr(value.encode("utf-8"))[2:-1],
        value.encode("unicode_escape").decode("ascii"),
    }


def _url_forms(value: str) -> set[str]:
    return {
        quote(value, safe=""),
        quote(value),
        quote(value, safe="/:@"),
        quote(value, safe=_REQUESTS_SAFE),
        quote_plus(value),
        quote_plus(value, safe="/"),
    }


def _number_forms(value: str) -> set[str]:
    if not (value.isascii() and value.isdigit()) or len(value) < 4:
        return set()
    n = int(value)
    return {f"{n:,}", f"{n:_}", f"{n:,}".replace(",", " "), f"{n:,}".replace(",", ".")}


def rendered_forms(value: str, min_length: int) -> set[str]:
    """``value`` and every rendered form of it (and of each of its lines) at least ``min_length`` long."""
    pieces = {value}
    if "\n" in value or "\r" in value:
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        pieces |= {*lines, " ".join(lines), "".join(lines), value.replace("\r\n", "\n")}
    out: set[str] = set()
    for piece in pieces:
        if len(piece) < min_length:
            continue
        out.add(piece)
        out |= _html_forms(piece) | _escape_forms(piece) | _url_forms(piece) | _number_forms(piece)
    return {form for form in out if len(form) >= min_length}


def literal_regex(literals: Iterable[str]) -> str:
    """A regular expression matching any of ``literals``, the longest one where several start at the same
    place. Built as a trie, so each character of the text is compared against one branch per distinct
    next character (not against every literal): a search stays linear in the text for a fixed set."""
    trie: dict[str, dict] = {}
    for lit in literals:
        if not lit:
            continue
        node = trie
        for ch in lit:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _node_regex(trie) if trie else r"(?!x)x"


def _node_regex(node: dict[str, dict]) -> str:
    """Regex of a trie node: a chain of single-child nodes is emitted as one literal (no recursion per
    character, so long values such as PEM keys compile without deep nesting)."""
    branches: list[str] = []
    for ch in sorted(k for k in node if k):
        chain = [ch]
        child = node[ch]
        while len(child) == 1 and "" not in child:
            (nxt,) = child
            chain.append(nxt)
            child = child[nxt]
        head = re.escape("".join(chain))
        if list(child) == [""]:
            branches.append(head)
            continue
        rest = _node_regex({k: v for k, v in child.items() if k})
        branches.append(head + (f"(?:{rest})?" if "" in child else f"(?:{rest})"))
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
