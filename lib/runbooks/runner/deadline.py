"""The run's deadline covers scrubbing and archiving too.

``--timeout T`` bounds the whole run: the kernel (start included) gets ``T`` seconds; stopping it, scrubbing
the notebook and committing the record then get at most :data:`DEADLINE_GRACE` more seconds, so a run
ends within ``T + DEADLINE_GRACE``. What keeps scrubbing short is the output cap
(:mod:`runbooks.runner.output_cap`); what guarantees it is :func:`scrub_within`: the notebook is scrubbed
in a worker thread on a copy, and if that has not finished when the budget is spent, the record is made
without the outputs (each code cell keeps one output saying so; sources, parameters and metadata are
still scrubbed and archived), and the run ends ``timed_out``. Nothing unscrubbed is ever written.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

#: seconds after ``--timeout`` within which the run is recorded (kernel stop, scrub, commit)
DEADLINE_GRACE = 15.0
#: part of the grace kept for writing the record once the notebook is scrubbed
COMMIT_RESERVE = 2.0
DROPPED_TEXT = (
    "[runbooks: outputs not archived: scrubbing them did not finish within the run's deadline "
    "(--timeout plus {grace:g}s); the run is recorded as timed_out]"
)


def scrub_body(nb: Any, redactor: Any) -> str:
    """The scrubbed notebook as text (every string of ``nb`` scrubbed in place, then the text checked again)."""
    import nbformat

    redactor.scrub_notebook(nb)
    body = nbformat.writes(nb)
    if redactor.contains_secret(body):  # belt and braces: a form no walk reached
        body = redactor.scrub_values(body)
    return str(body)


def scrub_within(nb: Any, redactor: Any, seconds: float | None) -> str | None:
    """The scrubbed notebook, or None when scrubbing did not finish within ``seconds`` (None: no limit);
    then record :func:`without_outputs` instead. ``nb`` itself is left as it was."""
    if seconds is None:
        return scrub_body(nb, redactor)
    box: dict[str, Any] = {}
    work = copy.deepcopy(nb)  # the worker cannot be stopped: it must not touch what the fallback records

    def target() -> None:
        try:
            box["body"] = scrub_body(work, redactor)
        except BaseException as e:  # re-raised by the caller
            box["error"] = e

    worker = threading.Thread(target=target, name="runbooks-scrub", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if "error" in box:
        raise box["error"]
    return box.get("body")


def without_outputs(nb: Any, redactor: Any) -> str:
    """``nb`` scrubbed and serialised with every code cell's outputs replaced by one saying why."""
    import nbformat

    from runbooks.redact import Redactor

    text = DROPPED_TEXT.format(grace=DEADLINE_GRACE)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("outputs"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text + "\n")]
    fresh = Redactor()  # the worker may still be using the other one
    fresh.update(redactor)
    return scrub_body(nb, fresh)


def budget(started: float, timeout: float | None) -> float | None:
    """Seconds left for scrubbing a run that started at ``started`` (``time.monotonic()``)."""
    if timeout is None:
        return None
    return max(started + timeout + DEADLINE_GRACE - COMMIT_RESERVE - time.monotonic(), 0.5)
