"""runbooks.redact: registered values in their rendered forms, credential patterns, whole notebooks."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

import nbformat
import pytest

from runbooks.redact import MARKER, Redactor, scrub_patterns

VALUE = "Sup3r-s3cret&<value>'42"


@pytest.fixture
def r() -> Redactor:
    red = Redactor()
    assert red.register(VALUE, "env:DB_PASSWORD")
    return red


def test_exact_value_and_rendered_forms(r: Redactor) -> None:
    tag = "[REDACTED:env:DB_PASSWORD]"
    for form in (VALUE, html.escape(VALUE), html.escape(VALUE, quote=False), json.dumps(VALUE)[1:-1],
                 repr(VALUE)[1:-1], quote(VALUE, safe="")):  # fmt: skip
        out = r.scrub(f"a {form} b")
        assert out == f"a {tag} b", form
        assert not r.contains_secret(out)
    assert r.contains_secret(f"x{VALUE}x")


def test_truncated_prefix_followed_by_ellipsis(r: Redactor) -> None:
    assert VALUE[:14] not in r.scrub(f"| {VALUE[:14]}... |")
    assert VALUE[:13] not in r.scrub(f"| {VALUE[:13]}… |")
    # a prefix without an ellipsis, or shorter than 12 characters, is left alone
    assert r.scrub(f"{VALUE[:14]} end") == f"{VALUE[:14]} end"
    assert r.scrub(f"{VALUE[:8]}...") == f"{VALUE[:8]}..."


REV_SECRET = "Abcdefghijklmn&opqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-tail"


@pytest.mark.parametrize(
    "rendered",
    [
        html.escape(REV_SECRET[:50]) + "...",  # pandas' truncated HTML cell
        html.escape(REV_SECRET[:40], quote=False) + "…",
        json.dumps(REV_SECRET.replace("&", '"'))[1:45] + "...",  # JSON-escaped quote in the prefix
        repr(REV_SECRET.replace("&", "'") + '"')[1:40] + "...",  # repr-escaped quote in the prefix
    ],
)
def test_truncated_prefix_of_an_escaped_form(rendered: str) -> None:
    red = Redactor()
    for value in (REV_SECRET, REV_SECRET.replace("&", '"'), REV_SECRET.replace("&", "'") + '"'):
        assert red.register(value, "env:REV")
    out = red.scrub(f"<td>{rendered}</td>")
    assert out in ("<td>[REDACTED:env:REV]...</td>", "<td>[REDACTED:env:REV]…</td>"), out
    assert REV_SECRET[:14] not in out


def test_short_values_are_not_registered() -> None:
    red = Redactor()
    assert not red.register("short", "env:X")
    assert red.scrub("short and sweet") == "short and sweet" and len(red) == 0


def test_value_split_by_ansi_colour_codes(r: Redactor) -> None:
    coloured = "\x1b[31m" + VALUE[:5] + "\x1b[0m" + VALUE[5:]
    assert VALUE[5:] not in r.scrub(coloured)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("id AKIA" + "IOSFODNN7EXAMPL3 here", "AKIA" + "IOSFODNN7EXAMPL3"),
        ("ASIA1234567890ABCDEF", "ASIA1234567890ABCDEF"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCYEXAMPLEKEY"),
        ("key sb_secret_abcdefghijklmnop123", "sb_" + "secret_abcdefghijklmnop123"),
        ("anon sb_publishable_ABCdef123456789", "sb_publishable_ABCdef123456789"),
        ("tok eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl", "eyJyb2xlIjoic2VydmljZV9yb2xlIn0"),
        ("Authorization: Bearer abcDEF123456789xyz", "abcDEF123456789xyz"),
        ("postgresql://app:pa55w0rd!@db:5432/x", "pa55w0rd!"),
        ("host=db password=verysecret99 user=x", "verysecret99"),
        ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "AGE-SECRET-KEY-1QQQQ"),
        ("-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQIBADANBg"),
        ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEvQIBADANBgtruncated", "MIIEvQIBADANBgtruncated"),
    ],
)
def test_credential_patterns(text: str, leak: str) -> None:
    out = scrub_patterns(text)
    assert leak not in out and MARKER in out


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b is fine",  # a git sha (40 hex) next to nothing
        "aws region eu-west-1, bucket spectral-backups",
        'f"postgresql://{user}:{password}@{host}/db"',  # a template, not a password
        "Bearer tokens are described in RFC 6750",
        "password: str = ''  # the help text",
        "https://runspectral.com/login",
    ],
)
def test_patterns_leave_ordinary_text_alone(text: str) -> None:
    assert scrub_patterns(text) == text


def test_aws_secret_needs_a_hint_nearby() -> None:
    token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert scrub_patterns(f"value {token}") == f"value {token}"
    assert token not in scrub_patterns(f"AWS creds: {token}")


def test_scrub_notebook_reaches_every_string(r: Redactor) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"token": VALUE}}
    nb.metadata[VALUE] = "as a key"
    cell = nbformat.v4.new_code_cell(f"token = '{VALUE}'")
    cell.metadata["note"] = [VALUE]
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"printed {VALUE}\n"),
        nbformat.v4.new_output("display_data", data={"text/html": f"<td>{html.escape(VALUE)}</td>",
                                                     "application/json": {"k": [VALUE]}, "text/plain": VALUE}),
        nbformat.v4.new_output("execute_result", data={"text/plain": repr(VALUE)}, execution_count=1),
        nbformat.v4.new_output("error", ename="ValueError", evalue=f"bad {VALUE}", traceback=[f"line {VALUE}"]),
    ]  # fmt: skip
    nb.cells.append(cell)
    r.scrub_notebook(nb)
    text = nbformat.writes(nb)
    assert not r.contains_secret(text)
    assert VALUE not in text and html.escape(VALUE) not in text
    assert text.count("[REDACTED:env:DB_PASSWORD]") >= 9
    nbformat.validate(nb)  # still a valid notebook


def test_scrub_obj_and_listeners() -> None:
    red = Redactor()
    seen: list[str] = []
    red.listeners.append(lambda value, label: seen.append(label))
    red.register("listener-secret-1", "file:x")
    assert seen == ["file:x"]
    out = red.scrub_obj({"a": ["listener-secret-1", 3, None], "listener-secret-1": ("t", 1.5)})
    assert out == {"a": ["[REDACTED:file:x]", 3, None], "[REDACTED:file:x]": ["t", 1.5]}
    other = Redactor()
    other.update(red)
    assert "listener-secret-1" in other
