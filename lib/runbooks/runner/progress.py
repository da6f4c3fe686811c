"""Cell-by-cell progress of a run on a terminal (stderr, rich); silent when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = {
    "ok": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "refused": "[yellow]⊘[/]",
    "timed_out": "[red]⏱[/]",
    "kernel_died": "[red]☠[/]",
    "interrupted": "[yellow]■[/]",
}


class Progress:
    """Reports cells as they run. ``enabled=False`` (or no terminal) makes every method a no-op."""

    def __init__(self, enabled: bool, scrub: Callable[[str], str] = str) -> None:
        self._console: Any = None
        self._status: Any = None
        self._scrub = scrub
        self._total = 0
        if enabled:
            from rich.console import Console

            console = Console(stderr=True, highlight=False)
            if console.is_terminal:
                self._console = console

    @property
    def active(self) -> bool:
        return self._console is not None

    def start(self, procedure: str, run_id: str, total_code_cells: int) -> None:
        if not self._console:
            return
        self._total = total_code_cells
        self._console.print(f"[bold]{procedure}[/] run [cyan]{run_id}[/]: {total_code_cells} code cell(s)")
        self._status = self._console.status("starting the kernel…")
        self._status.start()

    def _label(self, index: int, cell: Any) -> str:
        from rich.markup import escape

        first = next((ln.strip() for ln in str(cell.get("source", "")).splitlines() if ln.strip()), "")
        first = self._scrub(first)
        if len(first) > 60:
            first = first[:57] + "..."
        return f"cell {index} [dim]{escape(first)}[/]"

    def cell_start(self, index: int, ordinal: int, cell: Any) -> None:
        if self._status is not None:
            self._status.update(f"[{ordinal}/{self._total}] {self._label(index, cell)}")

    def cell_end(self, index: int, ordinal: int, cell: Any, outcome: str, seconds: float) -> None:
        if self._console:
            mark = _MARK.get(outcome, "?")
            self._console.print(f"{mark} [{ordinal}/{self._total}] {self._label(index, cell)} {seconds:.2f}s")

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
