"""``runbooks.record`` and ``runbooks.show``: structured results and tables (kernel side).

``record(name, value)`` turns ``value`` into JSON data (scalars, dicts, lists, pandas DataFrames as a
list of row dicts, check results as dicts, pydantic models, dataclasses), scrubs it and:

- under the runner, sends it to the runner through its private channel (never through a notebook
  output or a file); the runner stores it in ``run.json`` under ``results.<name>`` (last value wins);
- interactively (Jupyter, no runner), displays it, so Run All shows what would be recorded.

``show(obj)`` displays a table: a DataFrame, a list of :class:`~runbooks.checks.base.CheckResult`
(status coloured, with a PASS/WARN/FAIL count), a dict, or a list of dicts. Everything shown is
scrubbed of registered secrets and credential-looking strings first.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from runbooks import channel, redact

_STATUS_STYLE = {
    "PASS": "background-color:#d9f2d9;color:#14521f;font-weight:bold",
    "WARN": "background-color:#fff1c2;color:#6b4e00;font-weight:bold",
    "FAIL": "background-color:#f8d0d0;color:#8a1111;font-weight:bold",
}


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_json")


def _is_check_result(value: Any) -> bool:
    return type(value).__name__ == "CheckResult" and hasattr(value, "as_dict")


def to_data(value: Any) -> Any:
    """``value`` as JSON-compatible data (lossy for exotic objects, which become strings)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return to_data(value.value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if _is_frame(value):
        return json.loads(value.to_json(orient="records", date_format="iso", default_handler=str))
    if _is_check_result(value):
        return to_data(value.as_dict())
    if hasattr(value, "model_dump"):
        return to_data(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_data(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_data(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return to_data(value.tolist())
    return str(value)


def record(name: str, value: Any) -> None:
    """Record ``value`` as result ``name`` of this run (scrubbed; see the module doc)."""
    if not isinstance(name, str) or not name:
        raise ValueError("record(name, value): name must be a non-empty string")
    data = redact.scrub_obj(to_data(value))
    if channel.under_runner():
        channel.send(channel.RESULT, name=name, value=data)
        return
    from runbooks.kernel import interactive

    interactive.note_result(name, data)  # an interactive apply's record keeps it
    _display_recorded(name, data)


def _display_recorded(name: str, data: Any) -> None:
    text = f"recorded {name!r}: " + json.dumps(data, indent=1, default=str)[:2000]
    if not _in_ipython():
        print(text)
        return
    from IPython.display import display

    display({"text/plain": text}, raw=True)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    return get_ipython() is not None


def _frame_of(obj: Any) -> tuple[Any, bool]:
    """(DataFrame, is_check_results) for the things show() accepts."""
    import pandas as pd

    if _is_frame(obj):
        return obj, "status" in obj.columns and "check" in obj.columns
    if isinstance(obj, list | tuple) and obj and all(_is_check_result(r) for r in obj):
        from runbooks.checks.base import to_frame

        return to_frame(obj), True
    if isinstance(obj, Mapping):
        return pd.DataFrame({"key": [str(k) for k in obj], "value": [to_data(v) for v in obj.values()]}), False
    if isinstance(obj, list | tuple):
        rows = [to_data(r) for r in obj]
        if rows and all(isinstance(r, dict) for r in rows):
            return pd.DataFrame(rows), False
        return pd.DataFrame({"value": rows}), False
    return pd.DataFrame({"value": [to_data(obj)]}), False


def _scrub_frame(df: Any) -> Any:
    out = df.copy()
    out.columns = [redact.scrub(str(c)) for c in out.columns]
    return out.map(lambda v: redact.scrub(v) if isinstance(v, str) else v)


def show(obj: Any, title: str | None = None) -> None:
    """Display ``obj`` as a table (scrubbed); check results get coloured statuses and a count."""
    df, checks = _frame_of(obj)
    df = _scrub_frame(df)
    summary = ""
    if checks and "status" in df.columns:
        counts = {s: int((df["status"].astype(str) == s).sum()) for s in ("PASS", "WARN", "FAIL")}
        summary = " · ".join(f"{n} {s}" for s, n in counts.items())
    heading = " — ".join(x for x in (title, summary) if x)
    text = (heading + "\n" if heading else "") + df.to_string(index=False, max_colwidth=120)
    if not _in_ipython():
        print(redact.scrub(text))
        return
    styler = df.style.hide(axis="index")
    if checks and "status" in df.columns:
        styler = styler.map(lambda v: _STATUS_STYLE.get(str(v), ""), subset=["status"])
    html = styler.to_html()
    if heading:
        import html as _html

        html = f"<p><strong>{_html.escape(heading)}</strong></p>" + html
    from IPython.display import display

    display({"text/html": redact.scrub(html), "text/plain": redact.scrub(text)}, raw=True)
