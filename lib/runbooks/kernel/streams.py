"""Kernel side of the output caps: a flood is stopped where it starts.

ipykernel buffers what a cell writes to ``sys.stdout``/``sys.stderr`` and publishes it every 0.2 s; a cell
that prints 100 MB in a tight loop gets ahead of the runner, whose message queue then holds the backlog
before its cap (:mod:`runbooks.runner.output_cap`) can drop it. The runner therefore starts its kernels
with ``install(per_cell, per_run)`` run at start-up (ipykernel's ``exec_lines``):

- every write is split into pieces of at most :data:`CHUNK` characters, flushed as they fill, so that
  one message stays small;
- once a cell has written a little more than ``per_cell`` characters (or the run ``per_run``), further
  writes are dropped in the kernel: the runner still sees that the cap was passed and marks the cut.

This is cooperation, not a defence (a notebook can write to the file descriptors or undo it): the
runner's own caps are what the archive relies on. Stdlib only: it is imported in every kernel.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

CHUNK = 256 * 1024


class _Budget:
    def __init__(self, per_cell: int, per_run: int) -> None:
        self.per_cell = per_cell + CHUNK  # a little past the cap: the runner must see that it was passed
        self.per_run = per_run + CHUNK
        self.cell = 0
        self.run = 0

    def take(self, n: int) -> int:
        allowed = max(0, min(n, self.per_cell - self.cell, self.per_run - self.run))
        self.cell += allowed
        self.run += allowed
        return allowed

    def new_cell(self, *args: Any) -> None:
        """``pre_run_cell``: IPython has just wrapped each stream's ``write`` to tee the cell's output into its
        history (and puts the previous one back after the cell), so the cap goes on top, for this cell."""
        self.cell = 0
        for stream in (sys.stdout, sys.stderr):
            if stream is not None and type(stream).__module__.startswith("ipykernel"):
                with contextlib.suppress(AttributeError, TypeError):
                    stream.write = self._capped(stream, stream.write)  # type: ignore[method-assign]  # cap the kernel's own stream object

    def _capped(self, stream: Any, write: Any) -> Any:
        pending = [0]

        def capped_write(text: Any) -> Any:
            if not isinstance(text, str):
                return write(text)
            n = len(text)
            keep = self.take(n)
            for start in range(0, keep, CHUNK):
                piece = text[start : min(start + CHUNK, keep)]
                write(piece)
                pending[0] += len(piece)
                if pending[0] >= CHUNK:
                    stream.flush()
                    pending[0] = 0
            return n

        return capped_write


def install(per_cell: int, per_run: int) -> None:
    """Chunk and cap what each cell writes to ``sys.stdout``/``sys.stderr`` in this kernel."""
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if shell is not None:
        shell.events.register("pre_run_cell", _Budget(per_cell, per_run).new_cell)
