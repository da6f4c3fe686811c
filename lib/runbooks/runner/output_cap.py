"""Output caps: how much of a run's output the runner keeps, enforced as outputs are collected.

A runbook that prints 100 MB must neither make the runner hold it nor the archive store it. Every
output the kernel sends is measured (characters of stream text, of every mimetype's data, of an error's
message and traceback) when it arrives, against two caps (:class:`OutputCaps`, overridable with
``runbooks run --max-cell-output / --max-run-output`` or ``run_procedure(output_caps=...)``):

- **per cell**: the outputs a cell keeps (default :data:`DEFAULT_CELL_CAP` characters);
- **per run**: the outputs all cells keep together (default :data:`DEFAULT_RUN_CAP`).

Past a cap, stream text is cut (the part that fits is kept), other outputs are dropped, and one
``display_data`` output, *after* the cut text, says so: ``[runbooks: output cut: ...]`` with the cap, the
characters not kept and how to raise the cap; its ``metadata.runbooks.output_cut`` holds the same as data.
The marker is a separate output, so the scrubber sees the cut text's end as an end. Error outputs are
never dropped (the run's status is judged from them), only their message and traceback are shortened to
:data:`ERROR_TEXT_CAP`. ``update_display_data`` that would grow past the caps is replaced by the marker
text. A cap changes what is archived, never the run's status.

The runner's memory is bounded by the caps plus the messages in flight; the kernel flushes its streams
in pieces of :data:`runbooks.kernel.streams.CHUNK` characters and stops sending a cell's stream
output a little past the cap (see that module), so a cell that prints megabytes at once neither makes
one huge message nor a backlog. The count of characters not kept is what reached the runner ("at least").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CELL_CAP = 1024 * 1024
DEFAULT_RUN_CAP = 5 * 1024 * 1024
ERROR_TEXT_CAP = 64 * 1024
MARKER_PREFIX = "[runbooks: output cut"


@dataclass(frozen=True)
class OutputCaps:
    """Characters of output kept per cell and per run (see the module doc)."""

    per_cell: int = DEFAULT_CELL_CAP
    per_run: int = DEFAULT_RUN_CAP

    def __post_init__(self) -> None:
        for name, value in (("per_cell", self.per_cell), ("per_run", self.per_run)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"output cap {name} must be a positive number of characters (got {value!r})")


def output_size(out: Any) -> int:
    """Characters an output holds (its text, every mimetype's data, an error's message and traceback)."""
    kind = out.get("output_type")
    if kind == "stream":
        return len(out.get("text") or "")
    if kind == "error":
        return len(out.get("evalue") or "") + sum(len(line) for line in out.get("traceback") or [])
    return sum(_data_size(v) for v in (out.get("data") or {}).values())


def _data_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sum(len(v) for v in value)
    return len(json.dumps(value, default=str))


def _shorten(text: str, cap: int) -> str:
    return text if len(text) <= cap else text[:cap]


@dataclass
class _Cell:
    used: int = 0
    dropped: int = 0
    marker: Any = None  #: the marker output, once this cell's output was cut


@dataclass
class OutputLimiter:
    """Applies :class:`OutputCaps` to outputs as they arrive (called by the engine's notebook client)."""

    caps: OutputCaps = field(default_factory=OutputCaps)
    run_used: int = 0
    cells: dict[int, _Cell] = field(default_factory=dict)

    def cut_cells(self) -> list[int]:
        """Indexes of the cells whose output was cut."""
        return sorted(i for i, c in self.cells.items() if c.marker is not None)

    def cleared(self, cell_index: int, outs: list[Any]) -> None:
        """The cell's outputs are about to be cleared (``clear_output``): they no longer count."""
        state = self.cells.setdefault(cell_index, _Cell())
        freed = sum(output_size(o) for o in outs if o is not state.marker)
        state.used = max(0, state.used - freed)
        self.run_used = max(0, self.run_used - freed)
        state.marker = None

    def admit(self, outs: list[Any], cell_index: int) -> bool:
        """Judge ``outs[-1]`` (just appended): keep it, cut it, or drop it. False if it was dropped."""
        out = outs[-1]
        state = self.cells.setdefault(cell_index, _Cell())
        if out.get("output_type") == "error":  # kept whatever the caps: the status is judged from it
            out["evalue"] = _shorten(out.get("evalue") or "", ERROR_TEXT_CAP)
            tb, left = [], ERROR_TEXT_CAP
            for line in out.get("traceback") or []:
                if left <= 0:
                    break
                tb.append(_shorten(line, left))
                left -= len(line)
            out["traceback"] = tb
            self._move_marker_last(outs, state)
            return True
        size = output_size(out)
        room = min(self.caps.per_cell - state.used, self.caps.per_run - self.run_used)
        if size <= room and state.marker is None:
            state.used += size
            self.run_used += size
            return True
        if out.get("output_type") == "stream" and room > 0 and state.marker is None:
            out["text"] = out["text"][:room]
            state.used += room
            self.run_used += room
            state.dropped += size - room
        else:
            outs.pop()
            state.dropped += size
        self._mark(outs, state, cell_index)
        return False

    def admit_update(self, new_size: int, old_size: int, cell_index: int) -> bool:
        """An ``update_display_data`` replacing ``old_size`` characters with ``new_size``: allowed?"""
        state = self.cells.setdefault(cell_index, _Cell())
        grow = new_size - old_size
        if grow <= 0 or (state.used + grow <= self.caps.per_cell and self.run_used + grow <= self.caps.per_run):
            state.used = max(0, state.used + grow)
            self.run_used = max(0, self.run_used + grow)
            return True
        state.dropped += new_size
        return False

    def marker_text(self, cell_index: int) -> str:
        state = self.cells.setdefault(cell_index, _Cell())
        which = "per-cell" if state.used >= self.caps.per_cell else "per-run"
        cap = self.caps.per_cell if which == "per-cell" else self.caps.per_run
        option = "--max-cell-output" if which == "per-cell" else "--max-run-output"
        return (
            f"{MARKER_PREFIX}: this cell's output passed the {which} cap of {cap} characters; "
            f"at least {state.dropped} more characters were not kept (raise the cap with runbooks run {option} N)]"
        )

    def _mark(self, outs: list[Any], state: _Cell, cell_index: int) -> None:
        import nbformat

        text = self.marker_text(cell_index)
        meta = {"runbooks": {"output_cut": {"dropped_characters": state.dropped, "caps": vars(self.caps).copy()}}}
        if state.marker is None:
            state.marker = nbformat.v4.new_output("display_data", data={"text/plain": text}, metadata=meta)
            outs.append(state.marker)
        else:
            state.marker["data"]["text/plain"] = text
            state.marker["metadata"] = meta
            self._move_marker_last(outs, state)

    @staticmethod
    def _move_marker_last(outs: list[Any], state: _Cell) -> None:
        if state.marker is not None and outs and outs[-1] is not state.marker:
            for i, o in enumerate(outs):
                if o is state.marker:
                    outs.append(outs.pop(i))
                    break


def capped_client_class() -> type:
    """nbclient's ``NotebookClient`` with an :class:`OutputLimiter` applied as outputs are collected."""
    from nbclient import NotebookClient

    class CappedNotebookClient(NotebookClient):
        limiter: OutputLimiter

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
            if self.clear_before_next_output:
                self.limiter.cleared(cell_index, outs)
            out = super().output(outs, msg, display_id, cell_index)
            if out is None or not outs or outs[-1] is not out:
                return out
            if self.limiter.admit(outs, cell_index):
                return out
            if display_id:  # the dropped output's place in the display-id map is gone too
                indices = self._display_id_map.get(display_id, {}).get(cell_index, [])
                if indices:
                    indices.pop()
            return None

        def clear_output(self, outs: list[Any], msg: dict[str, Any], cell_index: int) -> None:
            if not msg["content"].get("wait") and not self.output_hook_stack[msg["parent_header"].get("msg_id")]:
                self.limiter.cleared(cell_index, outs)
            super().clear_output(outs, msg, cell_index)

        def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
            data = (msg.get("content") or {}).get("data") or {}
            new = sum(_data_size(v) for v in data.values())
            for cell_idx, indices in self._display_id_map.get(display_id, {}).items():
                outputs = self.nb["cells"][cell_idx]["outputs"]
                indices[:] = [i for i in indices if i < len(outputs)]
                old = sum(output_size(outputs[i]) for i in indices)
                if indices and not self.limiter.admit_update(new * len(indices), old, cell_idx):
                    text = self.limiter.marker_text(cell_idx)
                    msg = {**msg, "content": {**msg["content"], "data": {"text/plain": text}, "metadata": {}}}
            super()._update_display_id(display_id, msg)

    return CappedNotebookClient
