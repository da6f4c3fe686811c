"""runbooks.runner.progress: cell-by-cell lines on a terminal, silence otherwise, scrubbed labels."""

from __future__ import annotations

import pytest

from runbooks.runner.progress import Progress


def test_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    p = Progress(True, scrub=lambda s: s.replace("SECRETX", "[REDACTED]"))
    assert p.active
    p.start("check-dns", "run-1", 2)
    p.cell_start(2, 1, {"source": "x = 1"})
    p.cell_end(2, 1, {"source": "print('SECRETX')"}, "ok", 0.5)
    p.cell_end(3, 2, {"source": "raise ValueError()"}, "failed", 0.1)
    p.stop()
    err = capsys.readouterr().err
    assert "check-dns" in err and "run-1" in err and "[1/2] cell 2" in err and "[2/2] cell 3" in err
    assert "SECRETX" not in err and "REDACTED" in err


def test_progress_is_quiet_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    for enabled in (True, False):
        p = Progress(enabled)
        assert not p.active
        p.start("x", "r", 1)
        p.cell_start(0, 1, {"source": "1"})
        p.cell_end(0, 1, {"source": "1"}, "ok", 0.1)
        p.stop()
    assert capsys.readouterr().err == ""
