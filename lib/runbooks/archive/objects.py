"""Conditional object primitives: the one interface every archive store writes small objects through.

An archive store keeps a key -> bytes namespace besides its runs (locks, resumable state, schedule slots).
Coordination between writers that share nothing but the store needs exactly two atomic primitives:

- :meth:`Objects.create_if_absent` ``(key, data) -> etag | None``: write ``data`` only if ``key`` does not
  exist; ``None`` if it does (the caller lost the race). Local: ``link(2)`` of a fully written temporary file
  (as ``O_EXCL``, but a reader never sees a half-written object). S3: ``PutObject`` with
  ``If-None-Match: *`` (412 when the key exists).
- :meth:`Objects.replace_if_match` ``(key, data, etag) -> etag | None``: replace the object only if it is
  still the version read (its ``etag``); ``None`` otherwise. Local: compare and rename under a file lock. S3:
  ``PutObject`` with ``If-Match: <etag>``.

:meth:`Objects.get` returns the bytes with their etag (to pass to ``replace_if_match``). Nothing here
deletes: a store of record is append-only (a lock is released by replacing it with a released marker).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

_KEY_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:=-]*$")
#: ask for large listing pages: S3 never returns more than 1,000 keys a page, a server that may (the twin) saves
#: round trips (moto scans the whole bucket for every page)
PAGE = {"PageSize": 10_000}


@dataclass(frozen=True)
class Stored:
    """An object as read: its bytes and the opaque version tag a conditional replace needs."""

    data: bytes
    etag: str


class StoreUnavailable(RuntimeError):
    """The store cannot be reached (network, endpoint down): the caller may spool and retry later."""


def check_key(key: str) -> str:
    """A relative key of safe parts separated by ``/`` (no ``..``, no absolute path); raises ValueError."""
    parts = key.split("/")
    if not key or any(not _KEY_PART.match(p) for p in parts):
        raise ValueError(f"unsafe object key {key!r}: use parts of letters, digits, '_', '.', '-' separated by '/'")
    return key


class Objects(Protocol):
    """Small objects with conditional writes (see the module docstring)."""

    def get(self, key: str) -> Stored | None: ...
    def create_if_absent(self, key: str, data: bytes) -> str | None: ...
    def replace_if_match(self, key: str, data: bytes, etag: str) -> str | None: ...
    def list_keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]: ...


def local_etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalObjects:
    """Objects as files under ``root`` (the archive root): ``root/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get(self, key: str) -> Stored | None:
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        return Stored(data, local_etag(data))

    def _temp(self, target: Path, data: bytes) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".obj-", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def create_if_absent(self, key: str, data: bytes) -> str | None:
        target = self.path(key)
        tmp = self._temp(target, data)
        try:
            os.link(tmp, target)  # atomic, fails if the name exists: O_EXCL without a half-written window
        except FileExistsError:
            return None
        finally:
            os.unlink(tmp)
        return local_etag(data)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".objects.lock"), timeout=30):
            yield

    def replace_if_match(self, key: str, data: bytes, etag: str) -> str | None:
        target = self.path(key)
        with self._guard():
            current = self.get(key)
            if current is None or current.etag != etag:
                return None
            tmp = self._temp(target, data)
            os.replace(tmp, target)
        return local_etag(data)

    def list_keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                key = p.relative_to(self.root).as_posix()
                if start_after is None or key > start_after:
                    yield key


class S3Objects:
    """Objects in an S3 bucket under ``prefix``, written with S3's conditional ``PutObject``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> Stored | None:
        with s3_errors():
            try:
                r = self.client.get_object(Bucket=self.bucket, Key=self.full(key))
            except self.client.exceptions.NoSuchKey:
                return None
            return Stored(r["Body"].read(), r["ETag"])

    def _put(self, key: str, data: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        with s3_errors():
            try:
                r = self.client.put_object(Bucket=self.bucket, Key=self.full(key), Body=data, **condition)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (409, 412):
                    return None
                raise
        return str(r["ETag"])

    def create_if_absent(self, key: str, data: bytes) -> str | None:
        return self._put(key, data, IfNoneMatch="*")

    def replace_if_match(self, key: str, data: bytes, etag: str) -> str | None:
        return self._put(key, data, IfMatch=etag)

    def list_keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        full_prefix = self.full(prefix.rstrip("/")) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full_prefix}
        if start_after is not None:
            kwargs["StartAfter"] = self.full(start_after)
        cut = len(self.prefix) + 1 if self.prefix else 0
        with s3_errors():
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs, PaginationConfig=PAGE):
                for obj in page.get("Contents", []):
                    yield obj["Key"][cut:]


@contextlib.contextmanager
def s3_errors() -> Iterator[None]:
    """Turn "cannot reach the endpoint" errors into :class:`StoreUnavailable` (access errors stay what they are)."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    try:
        yield
    except (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError) as e:
        raise StoreUnavailable(f"the S3 endpoint cannot be reached: {e}") from e
