"""runbooks.record / runbooks.show and the kernel -> runner channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from runbooks import channel, redact
from runbooks.checks.base import CheckResult
from runbooks.kernel import results
from runbooks.redact import Redactor
from runbooks.runner.channel import ChannelServer
from runbooks.secrets import SecretError, secret


def test_to_data_handles_the_recordable_kinds() -> None:
    df = pd.DataFrame({"a": [1, 2], "when": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    assert results.to_data(df) == [
        {"a": 1, "when": "2026-01-01T00:00:00.000"},
        {"a": 2, "when": "2026-01-02T00:00:00.000"},
    ]
    checks = [CheckResult.ok("c.one", "s", "fine"), CheckResult.fail("c.two", "t", "bad", "fix it")]
    assert results.to_data(checks)[1] == {"check": "c.two", "subject": "t", "status": "FAIL", "evidence": "bad",
                                          "remediation": "fix it"}  # fmt: skip
    assert results.to_data({"n": 1, "x": float("nan"), "d": dt.date(2026, 1, 2), "s": {3}}) == {
        "n": 1, "x": "nan", "d": "2026-01-02", "s": [3]
    }  # fmt: skip
    assert results.to_data(object()).startswith("<object object")


def test_record_without_runner_displays_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register("record-secret-value-1", "env:REC")
    results.record("answer", {"token": "record-secret-value-1", "n": 42})
    out = capsys.readouterr().out
    assert "recorded 'answer'" in out and '"n": 42' in out
    assert "record-secret-value-1" not in out and "[REDACTED:env:REC]" in out
    with pytest.raises(ValueError):
        results.record("", 1)


def test_show_prints_a_scrubbed_table_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register("show-secret-value-22", "env:SHOW")
    checks = [CheckResult.ok("c.one", "s", "token show-secret-value-22"), CheckResult.warn("c.two", "t", "meh", "x")]
    results.show(checks, title="posture")
    out = capsys.readouterr().out
    assert "posture — 1 PASS · 1 WARN · 0 FAIL" in out
    assert "show-secret-value-22" not in out and "[REDACTED:env:SHOW]" in out
    results.show({"k": "v"})
    results.show([{"a": 1}, {"a": 2}])
    out = capsys.readouterr().out
    assert "k" in out and "v" in out and "a" in out


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChannelServer]:
    """A real ChannelServer in an event loop thread; this process plays the kernel."""
    red = Redactor()
    srv = ChannelServer(on_secret=red.register)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(srv.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    for k, v in srv.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(channel, "_client", None)
    srv.redactor = red  # type: ignore[attr-defined]
    yield srv
    asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    channel._client = None


def test_secret_reaches_the_runner_before_it_is_returned(
    server: ChannelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RB_CHANNEL_SECRET", "channel-secret-value-9")
    assert channel.under_runner()
    assert secret("env:RB_CHANNEL_SECRET") == "channel-secret-value-9"
    assert "channel-secret-value-9" in server.redactor  # type: ignore[attr-defined]
    assert server.redactor.scrub("channel-secret-value-9") == "[REDACTED:env:RB_CHANNEL_SECRET]"  # type: ignore[attr-defined]
    from runbooks.secrets import protect

    protect("issued-key-material-77", "render:new_key")
    assert "issued-key-material-77" in server.redactor  # type: ignore[attr-defined]
    results.record("table", pd.DataFrame({"x": [1]}))
    results.record("table", [1, 2])  # last value wins
    results.record("token", "channel-secret-value-9")  # scrubbed in the kernel already
    assert server.results == {"table": [1, 2], "token": "[REDACTED:env:RB_CHANNEL_SECRET]"}


def test_wrong_token_is_refused(server: ChannelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(channel.TOKEN_ENV, "not-the-token")
    with pytest.raises(channel.ChannelError, match="refused"):
        channel.send("result", name="x", value=1)
    assert "x" not in server.results


def test_unreachable_channel_fails_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(channel.CHANNEL_ENV, str(tmp_path / "absent.sock"))
    monkeypatch.setattr(channel, "_client", None)
    monkeypatch.setenv("RB_CHANNEL_SECRET2", "unreachable-secret-1")
    with pytest.raises(SecretError, match="could not be told to redact it") as e:
        secret("env:RB_CHANNEL_SECRET2")
    assert "unreachable-secret-1" not in str(e.value)
    with pytest.raises(channel.ChannelError):
        results.record("x", 1)
