"""S3 through boto3, one client per credential (runtime, backup-writer, drill-reader).

Besides object reads and writes, this module has :class:`MultipartWriter`, a file-like sink that uploads
what is written to it as an S3 multipart upload of fixed-size parts, with a bounded number of parts in
flight: memory stays at ``part_size * (max_inflight + 1)`` whatever the size of the stream (boto3's
``upload_fileobj`` reads an unseekable stream whole into memory). It aborts the upload on any error.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from runbooks.providers.base import Provider, ProviderError

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

CredentialName = Literal["s3_runtime", "s3_backup_writer", "s3_drill_reader"]
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
        "ObjectLocked",
        "InvalidRequest",
    }
)


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "Unknown"))


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    size: int
    last_modified: datetime
    version_id: str | None = None


@dataclass(frozen=True)
class Attempt:
    """The outcome of a permission probe: allowed, or refused with the service's error code."""

    operation: str
    allowed: bool
    code: str = ""

    def __str__(self) -> str:
        return f"{self.operation}: {'allowed' if self.allowed else 'refused (' + self.code + ')'}"


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int
    sha256: str
    parts: int


class S3(Provider):
    """S3 with one credential of the inventory (``label`` names it in errors and evidence)."""

    name = "s3"

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        label: str = "s3",
        max_pool: int = 10,
    ):
        self.label = label
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=max_pool,
                s3={"addressing_style": "path"} if endpoint_url else None,
            ),
        )

    @classmethod
    def from_environment(cls, env: Environment, credential: CredentialName = "s3_runtime") -> Self:
        from runbooks.secrets import secret

        cred = getattr(env.credentials, credential)
        return cls(
            access_key_id=secret(cred.access_key_id),
            secret_access_key=secret(cred.secret_access_key),
            endpoint_url=env.endpoints.s3,
            region=env.endpoints.s3_region,
            label=credential.removeprefix("s3_").replace("_", "-"),
        )

    def _call(self, operation: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise ProviderError(
                self.name, f"{operation} as {self.label}", f"{error_code(e)}: {e}", status=status
            ) from e

    # -- objects --------------------------------------------------------------------------------
    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectRef]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for o in page.get("Contents", []):
                    yield ObjectRef(bucket, o["Key"], int(o["Size"]), o["LastModified"])
        except ClientError as e:
            raise ProviderError(self.name, f"list s3://{bucket}/{prefix} as {self.label}", error_code(e)) from e

    def head(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        return dict(self._call(f"head s3://{bucket}/{key}", self.client.head_object, **kw))

    def open(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        """The object's body as a stream (``botocore.response.StreamingBody``)."""
        kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        return self._call(f"get s3://{bucket}/{key}", self.client.get_object, **kw)["Body"]

    def get_json(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        with closing(self.open(bucket, key, version_id)) as body:
            return json.loads(body.read())

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> str | None:
        out = self._call(
            f"put s3://{bucket}/{key}",
            self.client.put_object,
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata=metadata or {},
            ChecksumAlgorithm="SHA256",
        )
        return out.get("VersionId")

    def put_json(self, bucket: str, key: str, data: Any) -> str | None:
        body = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(bucket, key, body, content_type="application/json")

    def multipart_writer(self, bucket: str, key: str, **kwargs: Any) -> MultipartWriter:
        return MultipartWriter(self.client, bucket, key, label=self.label, **kwargs)

    # -- bucket configuration (None when the bucket has none) --------------------------------------
    def _config(self, operation: str, fn: Callable[..., Any], absent: tuple[str, ...], **kw: Any) -> Any:
        try:
            return fn(**kw)
        except ClientError as e:
            if error_code(e) in absent:
                return None
            raise ProviderError(self.name, f"{operation} as {self.label}", error_code(e)) from e

    def versioning(self, bucket: str) -> str | None:
        out = self._config("get bucket versioning", self.client.get_bucket_versioning, (), Bucket=bucket)
        return out.get("Status")

    def object_lock(self, bucket: str) -> dict[str, Any] | None:
        out = self._config(
            "get object lock configuration",
            self.client.get_object_lock_configuration,
            ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"),
            Bucket=bucket,
        )
        return None if out is None else dict(out.get("ObjectLockConfiguration") or {})

    def encryption(self, bucket: str) -> list[dict[str, Any]] | None:
        out = self._config(
            "get bucket encryption",
            self.client.get_bucket_encryption,
            ("ServerSideEncryptionConfigurationNotFoundError",),
            Bucket=bucket,
        )
        return None if out is None else list(out["ServerSideEncryptionConfiguration"].get("Rules", []))

    def public_access_block(self, bucket: str) -> dict[str, bool] | None:
        out = self._config(
            "get public access block",
            self.client.get_public_access_block,
            ("NoSuchPublicAccessBlockConfiguration",),
            Bucket=bucket,
        )
        return None if out is None else dict(out["PublicAccessBlockConfiguration"])

    # -- permission probes --------------------------------------------------------------------------
    def attempt(self, operation: str, fn: Callable[..., Any], **kwargs: Any) -> Attempt:
        """Try a call and report whether the credential was allowed to make it (never raises on denial)."""
        try:
            out = fn(**kwargs)
            if isinstance(out, dict) and "Body" in out:
                out["Body"].close()
        except ClientError as e:
            return Attempt(operation, False, error_code(e))
        return Attempt(operation, True)


class MultipartWriter(io.RawIOBase):
    """Write-only stream that becomes one S3 object, uploaded in fixed-size parts as it is written.

    Parts are uploaded by a small thread pool from a fixed set of ``max_inflight + 1`` part buffers that
    are reused (no allocation churn): at most ``max_inflight`` parts travel at once while the next one
    fills (``write`` blocks otherwise), so memory is bounded whatever the stream size. ``close()``
    completes the upload; leaving the ``with`` block on an exception, or ``abort()``, aborts it and S3
    discards the parts. ``sha256`` and
    ``size`` describe exactly the bytes stored.
    """

    #: class-level defaults, so that a writer whose construction failed is safe to close or collect
    upload_id = ""
    result: UploadResult | None = None
    _aborted = False

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_inflight: int = 2,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        label: str = "s3",
    ):
        super().__init__()
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self._client, self.bucket, self.key, self.part_size, self.label = client, bucket, key, part_size, label
        # the part being filled: a preallocated buffer handed over whole (no copy) once full
        self._buf = bytearray(part_size)
        self._fill = 0
        self._hash = hashlib.sha256()
        self.size = 0
        self._parts: list[Future[dict[str, Any]]] = []
        # spare part buffers (allocated on first use), returned by the upload threads once a part is sent
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(max_inflight):
            self._free.put(None)
        self._pool = ThreadPoolExecutor(max_workers=max_inflight, thread_name_prefix="s3-part")
        self.result: UploadResult | None = None
        self._aborted = False
        self.upload_id = ""
        try:
            out = client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata or {}, ChecksumAlgorithm="SHA256"
            )
        except ClientError as e:
            self._pool.shutdown()
            super().close()
            raise ProviderError("s3", f"create multipart upload s3://{bucket}/{key} as {label}", error_code(e)) from e
        self.upload_id = str(out["UploadId"])

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed MultipartWriter")
        mv = memoryview(b).cast("B")
        n = len(mv)
        self._hash.update(mv)
        self.size += n
        i = 0
        while i < n:
            take = min(n - i, self.part_size - self._fill)
            self._buf[self._fill : self._fill + take] = mv[i : i + take]
            self._fill += take
            i += take
            if self._fill == self.part_size:
                self._submit(self._buf, recycle=True)
                spare = self._free.get()  # blocks while max_inflight parts are in flight
                self._buf, self._fill = spare if spare is not None else bytearray(self.part_size), 0
        return n

    def _submit(self, chunk: bytes | bytearray, *, recycle: bool = False) -> None:
        for f in self._parts:  # surface a failed part early instead of uploading the rest
            if f.done() and (error := f.exception()):
                raise error
        number = len(self._parts) + 1
        self._parts.append(self._pool.submit(self._upload_part, number, chunk, recycle))

    def _upload_part(self, number: int, chunk: bytes | bytearray, recycle: bool) -> dict[str, Any]:
        try:
            out = self._client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=chunk,
                ChecksumAlgorithm="SHA256",
            )
            part = {"PartNumber": number, "ETag": out["ETag"]}
            if out.get("ChecksumSHA256"):
                part["ChecksumSHA256"] = out["ChecksumSHA256"]
            return part
        finally:
            if recycle:
                self._free.put(chunk)  # type: ignore[arg-type]  # recycle=True only for our own bytearray buffers

    def abort(self) -> None:
        if not self.upload_id:
            super().close()
            return
        if self._aborted or self.result is not None:
            return
        self._aborted = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except ClientError:
            # never mask the error that caused the abort; uploaded parts never become an object, and the
            # bucket's AbortIncompleteMultipartUpload lifecycle rule (or a later abort) frees them
            pass
        finally:
            self._buf = bytearray()
            super().close()

    def close(self) -> None:
        if self.closed:
            return
        if not self.upload_id:
            super().close()
            return
        try:
            if self._fill or not self._parts:
                self._submit(bytes(memoryview(self._buf)[: self._fill]))
            self._buf, self._fill = bytearray(), 0
            parts = [f.result() for f in self._parts]
            self._pool.shutdown(wait=True)
            out = self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as e:
            self.abort()
            if isinstance(e, ClientError):
                raise ProviderError(
                    "s3", f"multipart upload s3://{self.bucket}/{self.key} as {self.label}", error_code(e)
                ) from e
            raise
        self.result = UploadResult(
            self.bucket,
            self.key,
            out.get("VersionId"),
            str(out.get("ETag", "")).strip('"'),
            self.size,
            self._hash.hexdigest(),
            len(parts),
        )
        super().close()

    def __del__(self) -> None:
        # never complete an upload implicitly: an unfinished writer that is garbage-collected aborts
        if not self.closed:
            self.abort()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
