"""The archived notebook as HTML, for the run page.

Cell markup comes from our ``templates/notebook.html.j2``; the content conversions are nbconvert's filters:
syntax highlighting (``Highlight2HTML``, Pygments), markdown with math (``markdown2html_mistune``) and ANSI
colours (``ansi2html``). Each cell is anchored ``#cell-N`` (N: its index in the archived notebook, the
``error.cell_index`` of ``run.json``) and marked with the runner's status of that cell.

Why not nbconvert's ``HTMLExporter``: it costs 0.1 to 0.4 s a notebook here (its template chain, a
BeautifulSoup pass and bleach), i.e. about an hour for 10,000 runs; this renders a notebook in a few
milliseconds. HTML outputs are inserted as the archive holds them (already redacted); the site's pages carry
a Content-Security-Policy that runs no script but the site's own, so a notebook output cannot run code.

Runs of one procedure share their cell sources, so highlighting and markdown are memoised per build.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from typing import Any

import jinja2

#: nbconvert's HTML display priority, without what would run code (javascript, widgets)
MIME_PRIORITY = (
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "application/json",
    "text/latex",
    "text/plain",
)


class NotebookRenderError(ValueError):
    """The archived notebook is not a notebook (the run page says so instead)."""


def best_mimetype(data: Mapping[str, Any]) -> str | None:
    return next((m for m in MIME_PRIORITY if m in data), None)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class NotebookRenderer:
    """Renders archived notebooks; one instance per build (it holds the memo caches)."""

    def __init__(self, env: jinja2.Environment) -> None:
        # nbconvert is imported here, not with the module: importing any of it loads all of it (about 3 s of
        # CPU), which every `runbooks` command paid, `--help` included, since the CLI builds the audit group
        from nbconvert.filters.ansi import ansi2html
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.markdown_mistune import markdown2html_mistune

        highlighter = Highlight2HTML(pygments_lexer="ipython3")

        @functools.lru_cache(maxsize=16384)
        def highlight_code(source: str) -> str:
            return str(highlighter(source, "ipython3"))

        @functools.lru_cache(maxsize=8192)
        def markdown2html(source: str) -> str:
            return markdown2html_mistune(_text(source))

        @functools.lru_cache(maxsize=16384)
        def ansi(text: str) -> str:
            return ansi2html(text)

        env.filters.update(
            highlight_code=lambda s: highlight_code(_text(s)),
            markdown2html=lambda s: markdown2html(_text(s)),
            ansi2html=lambda s: ansi(_text(s)),
            best_mimetype=best_mimetype,
            b64=lambda s: base64.b64encode(_text(s).encode()).decode(),
        )
        template = env.get_template("notebook.html.j2")

        @functools.lru_cache(maxsize=4096)
        def cell_html(key: str, index: int) -> str:
            return template.render(cell=json.loads(key), index=index)

        self._cell_html = cell_html

    def render(self, data: bytes) -> str:
        """HTML of the cells of an archived notebook (``data``: its bytes). Identical cells (same content at
        the same position, common across runs of a procedure) are rendered once per build."""
        try:
            nb = json.loads(data)
            cells = nb["cells"]
            if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
                raise ValueError("no list of cells")
            keys = [json.dumps(_normalised(c), sort_keys=True) for c in cells]
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise NotebookRenderError(f"not a notebook: {exc}") from None
        return '<div class="notebook">' + "".join(self._cell_html(k, i) for i, k in enumerate(keys)) + "</div>"


def _normalised(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as the template reads it: metadata and outputs present, text fields joined (the JSON format
    may split them into lists of lines), the cell id dropped (it differs across runs, the page does not show it)."""
    out = {k: v for k, v in cell.items() if k != "id"}
    out["source"] = _text(cell.get("source", ""))
    out.setdefault("metadata", {})
    out.setdefault("execution_count", None)
    outputs = []
    for o in cell.get("outputs", []) or []:
        o = dict(o)
        if "text" in o:
            o["text"] = _text(o["text"])
        if isinstance(o.get("data"), dict):
            o["data"] = {m: (v if m == "application/json" else _text(v)) for m, v in o["data"].items()}
        outputs.append(o)
    out["outputs"] = outputs
    return out
