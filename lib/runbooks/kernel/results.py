"""``runbooks.record`` and ``runbooks.show``: structured results and tables (kernel side).

``record(name, value)`` turns ``value`` into JSON data (scalars, dicts, lists, pandas DataFrames as a
list of row dicts, check results as dicts, pydantic models, dataclasses), scrubs it and:

- under the runner, sends it to the runner through its private channel (never through a notebook
  output or a file); the runner stores it in ``run.json`` under ``results.<name>`` (last value wins);
- interactively (Jupyter, no runner), displays it, so Run All shows what would be recorded.

``show(obj)`` displays a table: a DataFrame, a list of :class:`~runbooks.checks.base.CheckResult`
(status coloured, with a PASS/WARN/FAIL count), a dict, or a list of dicts, laid out by
:mod:`runbooks.kernel.tables` (without pandas: importing it would cost every run's kernel more than its own
start-up). Everything shown is scrubbed of registered secrets and credential-looking strings first.
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
from runbooks.kernel import tables
from runbooks.kernel.tables import is_check_result, is_frame


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
    if is_frame(value):
        return json.loads(value.to_json(orient="records", date_format="iso", default_handler=str))
    if is_check_result(value):
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


def show(obj: Any, title: str | None = None) -> None:
    """Display ``obj`` as a table (scrubbed; :mod:`runbooks.kernel.tables` says what it accepts); check results
    get coloured statuses and a count. Outside Jupyter the text table is printed."""
    table = tables.table_of(obj, to_data).map(redact.scrub)
    summary = " · ".join(f"{n} {s}" for s, n in table.counts().items()) if table.checks else ""
    heading = " — ".join(x for x in (title, summary) if x)
    text = tables.as_text(table, heading)
    if not _in_ipython():
        print(redact.scrub(text))
        return
    from IPython.display import display

    display({"text/html": redact.scrub(tables.as_html(table, heading)), "text/plain": redact.scrub(text)}, raw=True)
