"""The tables of ``runbooks.show``: what it accepts, as rows, laid out as text and as HTML, without pandas.

Importing pandas costs a kernel about 0.6 s of CPU, and its Styler 0.1 s more: as much as the rest of a
runbook's kernel start-up, paid by every run (a scheduled run, a refused parameter) for a table of a few dozen
rows. So :func:`show <runbooks.kernel.results.show>` lays its tables out itself; a pandas DataFrame is still
accepted (its columns and rows are read through :func:`~runbooks.kernel.results.to_data`).

A :class:`Table` holds cells as data; :func:`as_text` and :func:`as_html` turn each cell into one line of text
(long cells cut at ``max_width``), HTML-escaped in :func:`as_html`, with check statuses coloured. Scrubbing is
the caller's (``show`` scrubs every cell and the finished output).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runbooks.checks.base import CHECK_COLUMNS, STATUSES

STATUS_STYLE = {
    "PASS": "background-color:#d9f2d9;color:#14521f;font-weight:bold",
    "WARN": "background-color:#fff1c2;color:#6b4e00;font-weight:bold",
    "FAIL": "background-color:#f8d0d0;color:#8a1111;font-weight:bold",
}
#: longest cell of the text table (as pandas' ``max_colwidth`` was)
MAX_WIDTH = 120


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  #: cells as JSON-like data, one tuple per row, in column order

    @property
    def checks(self) -> bool:
        """Check results: a ``check`` and a ``status`` column (then statuses are coloured and counted)."""
        return "check" in self.columns and "status" in self.columns

    def counts(self) -> dict[str, int]:
        """Rows per status (PASS, WARN, FAIL) of a table of check results."""
        i = self.columns.index("status")
        return {s: sum(1 for r in self.rows if str(r[i]) == s) for s in STATUSES}

    def map(self, fn: Callable[[str], str]) -> Table:
        """The table with ``fn`` applied to every column name and every text cell (e.g. the redactor's scrub)."""
        return Table(
            tuple(fn(c) for c in self.columns),
            tuple(tuple(fn(v) if isinstance(v, str) else v for v in r) for r in self.rows),
        )


def is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_json")


def is_check_result(value: Any) -> bool:
    return type(value).__name__ == "CheckResult" and hasattr(value, "as_dict")


def _from_dicts(columns: list[str], rows: list[Mapping[str, Any]]) -> Table:
    return Table(tuple(columns), tuple(tuple(r.get(c) for c in columns) for r in rows))


def table_of(obj: Any, to_data: Callable[[Any], Any]) -> Table:
    """``obj`` as a table: a DataFrame, a list of check results, a mapping (key / value), a list of dicts (a
    column per key, in order of appearance), a list of anything else, or one value (a ``value`` column).
    ``to_data`` turns a value into JSON-like data (``runbooks.kernel.results.to_data``)."""
    if is_frame(obj):
        return _from_dicts([str(c) for c in obj.columns], to_data(obj))
    if isinstance(obj, list | tuple) and obj and all(is_check_result(r) for r in obj):
        return _from_dicts(list(CHECK_COLUMNS), [r.as_dict() for r in obj])
    if isinstance(obj, Mapping):
        return Table(("key", "value"), tuple((str(k), to_data(v)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        rows = [to_data(r) for r in obj]
        if rows and all(isinstance(r, dict) for r in rows):
            return _from_dicts(list(dict.fromkeys(k for r in rows for k in r)), rows)
        return Table(("value",), tuple((r,) for r in rows))
    return Table(("value",), ((to_data(obj),),))


def cell_text(value: Any) -> str:
    """One cell as one line: text as it is, ``None`` as nothing, other data as compact JSON."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return " ".join(text.splitlines())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def as_text(table: Table, heading: str = "", max_width: int = MAX_WIDTH) -> str:
    """The table in columns (left-aligned, two spaces apart), under ``heading`` if any."""
    cells = [[_cut(cell_text(v), max_width) for v in r] for r in table.rows]
    header = [_cut(c, max_width) for c in table.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = ["  ".join(t.ljust(w) for t, w in zip(line, widths, strict=True)).rstrip() for line in [header, *cells]]
    return "\n".join(([heading] if heading else []) + lines)


def as_html(table: Table, heading: str = "") -> str:
    """The table as HTML (every name and cell escaped), statuses coloured, under ``heading`` if any."""
    status = table.columns.index("status") if table.checks else -1

    def td(i: int, v: Any) -> str:
        text = cell_text(v)
        style = STATUS_STYLE.get(text, "") if i == status else ""
        return (f'<td style="{style}">' if style else "<td>") + html.escape(text) + "</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(td(i, v) for i, v in enumerate(r)) + "</tr>" for r in table.rows)
    out = f'<table class="runbooks-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return (f"<p><strong>{html.escape(heading)}</strong></p>" if heading else "") + out
