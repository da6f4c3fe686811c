"""Secret references -> values. The only code that reads credentials.

A reference is ``scheme:rest``. Built-in schemes:

- ``env:NAME``: the environment variable ``NAME``;
- ``file:PATH`` or ``file:PATH#field.sub``: a file's content (trailing newline stripped), or one field
  of a JSON file; a relative ``PATH`` is relative to the project root;
- ``sandbox:NAME``: the file ``<sandbox root>/secrets/NAME`` written by the twin's components.

More backends (a vault) plug in with :func:`register_backend`. Every resolved value is registered with
the redactor (:mod:`runbooks.redact`) and, under the runner, sent to the runner through its private
channel before it is returned, so the runner can scrub it from everything it archives. Errors name the
reference and the fix, never a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from runbooks import channel, paths, redact

_REF = re.compile(r"^(?P<scheme>[a-z][a-z0-9_+-]*):(?P<rest>.+)$")


class SecretError(LookupError):
    """A secret reference is malformed or cannot be resolved (the message never holds a value)."""


class Backend(Protocol):
    def __call__(self, rest: str, ref: str) -> str: ...


def _env(rest: str, ref: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rest):
        raise SecretError(f"{ref}: not a valid environment variable name; write env:NAME")
    value = os.environ.get(rest)
    if value is None or value == "":
        raise SecretError(f"{ref}: environment variable {rest} is not set (or empty); export it and re-run")
    return value


def _json_field(data: object, dotted: str, ref: str) -> str:
    cur = data
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise SecretError(f"{ref}: the JSON file has no field {dotted!r} (stopped at {part!r}); fix the #field")
    if isinstance(cur, dict | list) or cur is None:
        raise SecretError(f"{ref}: field {dotted!r} is not a string or number; point #field at a scalar")
    return str(cur)


def _read(path: Path, ref: str, hint: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise SecretError(f"{ref}: no such file {path}; {hint}") from None
    except IsADirectoryError:
        raise SecretError(f"{ref}: {path} is a directory, not a file") from None
    except PermissionError:
        raise SecretError(f"{ref}: {path} is not readable by this user; fix its permissions") from None
    except UnicodeDecodeError:
        raise SecretError(f"{ref}: {path} is not UTF-8 text") from None


def _file(rest: str, ref: str) -> str:
    raw_path, _, field = rest.partition("#")
    if not raw_path:
        raise SecretError(f"{ref}: missing path; write file:PATH or file:PATH#field")
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = paths.project_root() / path
    text = _read(path, ref, "create it or fix the path (relative paths start at the project root)")
    if not field:
        return text.rstrip("\r\n")
    try:
        data = json.loads(text)
    except ValueError:
        raise SecretError(f"{ref}: {path} is not valid JSON, so #{field} cannot be read") from None
    return _json_field(data, field, ref)


def _sandbox(rest: str, ref: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", rest) or rest.startswith("."):
        raise SecretError(f"{ref}: not a valid sandbox secret name; write sandbox:NAME (letters, digits, _ . -)")
    path = paths.sandbox_root() / "secrets" / rest
    return _read(path, ref, "start the twin (`runbooks sandbox up`) or check the name").rstrip("\r\n")


_BACKENDS: dict[str, Callable[[str, str], str]] = {"env": _env, "file": _file, "sandbox": _sandbox}


def register_backend(scheme: str, backend: Callable[[str, str], str]) -> None:
    """Add a backend: ``backend(rest, ref) -> value`` for references ``scheme:rest``."""
    if not re.fullmatch(r"[a-z][a-z0-9_+-]*", scheme):
        raise ValueError(f"invalid scheme {scheme!r}")
    _BACKENDS[scheme] = backend


def schemes() -> list[str]:
    return sorted(_BACKENDS)


def parse_ref(ref: str) -> tuple[str, str]:
    """Split and check a reference without resolving it: ``(scheme, rest)``; raises SecretError."""
    if not isinstance(ref, str):
        raise SecretError("a secret reference must be a string such as env:NAME")
    m = _REF.match(ref.strip())
    known = ", ".join(f"{s}:" for s in schemes())
    if not m:
        raise SecretError(f"{ref!r} is not a secret reference; write one of {known} (e.g. env:NAME)")
    if m["scheme"] not in _BACKENDS:
        raise SecretError(f"{ref!r}: unknown secret scheme {m['scheme']!r}; use one of {known}")
    return m["scheme"], m["rest"]


def is_ref(value: str) -> bool:
    try:
        parse_ref(value)
    except SecretError:
        return False
    return True


def protect(value: str, label: str) -> str:
    """Register a secret ``value`` obtained otherwise than by reference (e.g. key material a vendor API just
    issued): the redactor knows it and, under the runner, so does the runner, before it is returned.
    ``label`` names it in redaction markers (``[REDACTED:<label>]``); it must not be secret itself."""
    if not isinstance(value, str):
        value = str(value)
    redact.register(value, label)
    if channel.under_runner() and len(value) >= redact.MIN_SECRET_LENGTH:
        try:
            channel.send(channel.SECRET, value=value, label=label)
        except channel.ChannelError as e:
            raise SecretError(f"{label}: obtained, but the runner could not be told to redact it ({e})") from None
    return value


def withhold(name: str, value: str) -> None:
    """``value`` of parameter ``name`` was refused (:class:`runbooks.errors.BadParameter`): it may be a pasted
    secret. The redactor scrubs it (if it is long enough to be registered) and, under the runner, the runner
    records ``name`` as ``[not recorded]`` whatever the value's length."""
    label = redact.REFUSED_LABEL + name
    redact.register(value, label)
    if channel.under_runner():
        channel.send(channel.SECRET, value=value, label=label)


def secret(ref: str) -> str:
    """Resolve ``ref`` to its value and register the value for redaction (before returning it)."""
    scheme, rest = parse_ref(ref)
    ref = ref.strip()
    try:
        value = _BACKENDS[scheme](rest, ref)
    except SecretError:
        raise
    except Exception as e:  # a plug-in backend's own error: never echo its message (it may hold a value)
        raise SecretError(f"{ref}: the {scheme} backend failed ({type(e).__name__}); check the reference") from None
    return protect(value, ref)


def fingerprint(value: str | bytes) -> str:
    """``sha256:<first 12 hex>`` of ``value``: shows which key is which without showing the key."""
    data = value.encode() if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]
