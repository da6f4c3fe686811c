"""Issue 9 (secrets that still reached disk): one test per class of leak, each failing on the old scrubber."""

from __future__ import annotations

import html
import json
import reprlib
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus, urlencode
from xml.sax.saxutils import escape as xml_escape

import nbformat
import pytest
import requests

from runbooks.redact import Redactor, scrub_patterns

SECRET = "Zq8!vT#2 kLw&9'pR\"xN4@mB7/yH"  # spaces, quotes, &, @, / and #: every encoder changes it
TAG = "[REDACTED:env:S]"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def r() -> Redactor:
    red = Redactor()
    assert red.register(SECRET, "env:S")
    return red


def _leaks(text: str, value: str = SECRET, keep: int = 6) -> list[str]:
    """Any run of ``keep`` consecutive characters of ``value`` (or of its rendered forms) still in ``text``."""
    return [value[i : i + keep] for i in range(len(value) - keep + 1) if value[i : i + keep] in text]


# --- 1. scrub after the final form; a cut value is still recognised -----------------------------------
@pytest.mark.parametrize(
    "cut",
    [
        SECRET[:14],  # at the very end of the string (a storage cap cut there)
        SECRET[:14] + " ...(truncated)",  # before the runner's truncation marker
        SECRET[:14] + "\n[output cut: 3 MB not archived]",  # before an output-cap marker
        SECRET[:13] + "…",
    ],
)
def test_1_a_value_cut_at_the_end_of_a_string_is_recognised(r: Redactor, cut: str) -> None:
    out = r.scrub("error: " + cut)
    assert out.startswith("error: " + TAG), out
    assert not _leaks(out, keep=8)


def test_1_cut_scrubs_before_cutting(r: Redactor) -> None:
    message = "y" * 3970 + SECRET + " trailing" * 10  # a cut at 4000 first would keep 10 characters of it
    out = r.cut(message, 4000)
    assert len(out) <= 4000 and out.endswith(" ...(truncated)")
    assert SECRET[:10] not in out and "y" * 3970 in out


# --- 2. non-string values -------------------------------------------------------------------------------
def test_2_numeric_secrets_are_redacted_and_json_stays_valid() -> None:
    red = Redactor()
    assert red.register("4012888812", "env:ACCOUNT")
    data = red.scrub_obj({"account": 4012888812, "as_float": 4012888812.0, "other": 7, "flag": True})
    assert data == {"account": "[REDACTED:env:ACCOUNT]", "as_float": "[REDACTED:env:ACCOUNT].0", "other": 7,
                    "flag": True}  # fmt: skip
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/json": {"acct": 4012888812}}),
                    nbformat.v4.new_output("stream", name="stdout", text="4,012,888,812\n")]  # fmt: skip
    cell.execution_count = 3
    nb.cells.append(cell)
    red.scrub_notebook(nb)
    body = nbformat.writes(nb)
    assert "4012888812" not in body and "4,012,888,812" not in body
    nbformat.validate(nbformat.reads(body, as_version=4))
    # the whole-file pass keeps JSON valid too (a bare number becomes a string, not a broken token)
    raw = json.dumps({"cells": [{"n": 4012888812, "s": "x 4012888812 y"}]})
    assert "4012888812" not in red.scrub_values(raw)
    json.loads(red.scrub_values(raw))


# --- 3. encodings the standard library and requests produce by themselves -----------------------------
def _requests_url(value: str) -> str:
    return requests.Request("GET", "https://api.example.com/v1/x", params={"token": value}).prepare().url or ""


PADDED = "padding-0123456789-" + SECRET  # longer than reprlib's 30 characters: cut in the middle
UNICODE = "é" + SECRET  # a non-ASCII character: escaped by ascii(), bytes repr and character references


@pytest.mark.parametrize(
    ("value", "render"),
    [
        (SECRET, quote_plus),
        (SECRET, lambda v: urlencode({"token": v})),
        (SECRET, _requests_url),
        (SECRET, lambda v: html.escape(v).replace("&#x27;", "&#39;")),  # markupsafe / jinja
        (SECRET, lambda v: xml_escape(v, {"'": "&apos;", '"': "&quot;"})),
        (UNICODE, ascii),
        (UNICODE, lambda v: repr(v.encode())),
        (UNICODE, lambda v: v.encode("ascii", "xmlcharrefreplace").decode()),
        (PADDED, reprlib.repr),  # head ... tail
    ],
    ids=["quote_plus", "urlencode", "requests", "html-39", "xml-apos", "ascii", "bytes", "charref", "reprlib"],
)
def test_3_encodings_are_recognised(value: str, render: Callable[[str], str]) -> None:
    red = Redactor()
    assert red.register(value, "env:S")
    out = red.scrub(f"GET {render(value)} done")
    assert "[REDACTED:env:S]" in out, out
    assert not _leaks(out, SECRET, keep=8), out
    assert out.startswith("GET ") and out.endswith(" done")


# --- 4. split output --------------------------------------------------------------------------------------
def test_4_a_secret_split_over_interleaved_stream_messages_is_redacted(r: Redactor) -> None:
    parts = [SECRET[i : i + 7] for i in range(0, len(SECRET), 7)]  # each piece too short to be recognised
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("leak()")
    names = ["stdout", "stderr", "stdout", "stderr"]
    cell.outputs = [nbformat.v4.new_output("stream", name=n, text=p) for n, p in zip(names, parts, strict=True)]
    cell.outputs += [nbformat.v4.new_output("stream", name="stdout", text="\nok " + SECRET[:7]),
                     nbformat.v4.new_output("stream", name="stdout", text=SECRET[7:] + "\n")]  # fmt: skip
    nb.cells.append(cell)
    r.scrub_notebook(nb)
    shown = "".join(o["text"] for o in nb.cells[0].outputs)
    assert not _leaks(shown, keep=7), shown
    assert TAG in shown and "ok " + TAG in shown
    nbformat.validate(nb)


def test_4_unrelated_streams_keep_their_names(r: Redactor) -> None:
    outs = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
            nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
            nbformat.v4.new_output("stream", name="stdout", text="b\n")]  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=outs))
    r.scrub_notebook(nb)
    assert [(o["name"], o["text"]) for o in nb.cells[0].outputs] == [
        ("stdout", "a\n"),
        ("stderr", "warning\n"),
        ("stdout", "b\n"),
    ]


# --- 5. multi-line secrets ----------------------------------------------------------------------------------
def test_5_every_line_of_a_multi_line_secret_and_the_value_as_used() -> None:
    body = "MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8\nAgEAAkEAq7BFUpkGp3+XQ"
    pem = f"-----BEGIN TEST KEY-----\n{body}\n-----END TEST KEY-----"
    two = "first-line-of-the-file\nsecond-line-hunter22"
    red = Redactor()
    red.register(pem, "file:key.pem")
    red.register(two, "file:two.txt")
    lines = pem.splitlines()[1:3] + two.splitlines()
    for line in lines:
        assert line not in red.scrub(f"line: {line}\n"), line
    used = [
        f"invalid dsn: missing '=' after {two.splitlines()[1]!r} in connection info string",
        "key: " + " ".join(pem.split("\n")),  # newlines turned into spaces
        "body: " + "".join(pem.splitlines()[1:3]),  # the base64 body as one string
        "repr: " + repr(two),
    ]
    for text in used:
        out = red.scrub(text)
        assert not any(line in out for line in lines), out


# --- 7. credential shapes, and no false positives ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("PGPASSWORD=hunter2hunter psql -h db", "hunter2hunter"),
        ("export POSTGRES_PASSWORD=s3cr3tpw", "s3cr3tpw"),
        ("DB_PASSWORD='two words here'", "two words here"),
        ("password=hunter2 host=db", "hunter2"),
        ("password: Tr0ub4dor&3", "Tr0ub4dor&3"),
        ('{"user": "app", "password": "c0rrect horse"}', "c0rrect horse"),
        ("postgresql://app:p@ss@w0rd@db.internal:5432/app", "ss@w0rd"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCYEXAMPLEKEY"),
        ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "bPxRfiCYEXAMPLEKEY"),
        ("ALTER ROLE app WITH LOGIN PASSWORD 'n0t-in-the-log'", "n0t-in-the-log"),
    ],
)
def test_7_credential_shapes(text: str, leak: str) -> None:
    out = scrub_patterns(text)
    assert leak not in out and "[REDACTED]" in out, out


def test_7_ordinary_outputs_come_out_unchanged() -> None:
    corpus = (DATA / "ordinary_outputs.txt").read_text()
    assert scrub_patterns(corpus) == corpus
    red = Redactor()
    red.register("not-in-the-corpus-0123456789", "env:X")
    for block in corpus.split("\n\n"):
        assert red.scrub(block) == block


# --- 10 (scrubbing part). linear in the size of the output ---------------------------------------------------
def _pathological(n: int) -> str:
    unit = (
        "aws key AKIA" + "Q2W3E4R5T6Y7U8I9 " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY " + "a" * 60 + " "
        "eyJ" * 30 + " password=hunter2hunter2 postgresql://u:p@h/db " + "Zq8!vT#2 kLw&9" + "... "
    )
    return unit * n


def test_10_scrubbing_is_linear_in_the_number_of_matches(r: Redactor) -> None:
    def seconds(text: str) -> float:  # CPU time, best of three: the machine is shared
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            r.scrub(text)
            best = min(best, time.process_time() - t0)
        return best

    small, big = _pathological(500), _pathological(5000)
    t_small, t_big = seconds(small), seconds(big)
    assert t_big < 30 * max(t_small, 1e-3), (t_small, t_big)  # 10x the text: about 10x the time, not 100x
    assert t_big < 10, t_big


def test_1_a_vendor_error_body_is_scrubbed_before_it_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from runbooks import redact
    from runbooks.providers.base import ProviderError
    from runbooks.providers.supabase import SupabaseManagement

    monkeypatch.setattr(redact, "_default", Redactor())  # this process's redactor, for this test only
    key = "sbp_" + "k3y-echoed-by-the-vendor-0123456789"
    redact.register(key, "env:SUPABASE_ACCESS_TOKEN")
    body = {"message": "x" * 470 + key}  # a cut at 500 first would keep 30 characters of the key

    sb = SupabaseManagement("https://api.example.test", key, "projref")
    sb._http = httpx.Client(
        base_url="https://api.example.test", transport=httpx.MockTransport(lambda r: httpx.Response(401, json=body))
    )
    with pytest.raises(ProviderError) as e:
        sb.request("GET", "/v1/projects", operation="list projects", idempotent=False)
    assert key[:8] not in str(e.value) and "x" * 470 + "[REDACTED" in str(e.value)


def test_4_merging_many_stream_messages_is_linear(r: Redactor) -> None:
    def seconds(n: int) -> float:
        outputs = [{"output_type": "stream", "name": "stdout", "text": "x" * 40 + "\n"} for _ in range(n)]
        nb = {"metadata": {}, "cells": [{"cell_type": "code", "source": "spam()", "metadata": {}, "outputs": outputs}]}
        t0 = time.process_time()
        r.scrub_notebook(nb)
        assert len(nb["cells"][0]["outputs"]) == 1 and len(nb["cells"][0]["outputs"][0]["text"]) == 41 * n
        return time.process_time() - t0

    small, big = min(seconds(5_000) for _ in range(3)), min(seconds(50_000) for _ in range(3))
    assert big < 30 * max(small, 1e-3), (small, big)  # 10x the messages: about 10x the time, not 100x
