"""MultipartWriter and the S3 provider, against moto's in-process S3 (no network)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from runbooks.providers.base import ProviderError
from runbooks.providers.s3 import MIN_PART_SIZE, S3, MultipartWriter

BUCKET = "spectral-test-backups"


@pytest.fixture
def s3() -> Iterator[S3]:
    with mock_aws():
        provider = S3(access_key_id="test", secret_access_key="test", region="us-east-1", label="test")
        provider.client.create_bucket(Bucket=BUCKET)
        provider.client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield provider


def _pending_uploads(s3: S3) -> list[Any]:
    return list(s3.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def test_parts_are_fixed_size_and_the_object_is_exact(s3: S3) -> None:
    data = os.urandom(MIN_PART_SIZE * 2 + 12345)
    with s3.multipart_writer(BUCKET, "k", part_size=MIN_PART_SIZE) as w:
        for i in range(0, len(data), 70_000):  # writes of an unrelated size
            w.write(data[i : i + 70_000])
    r = w.result
    assert r is not None and r.parts == 3 and r.size == len(data)
    assert r.sha256 == hashlib.sha256(data).hexdigest()
    assert r.version_id
    assert s3.client.get_object(Bucket=BUCKET, Key="k", VersionId=r.version_id)["Body"].read() == data
    assert r.etag.endswith("-3")  # S3's ETag of a three-part multipart upload


def test_empty_stream_is_one_empty_object(s3: S3) -> None:
    with s3.multipart_writer(BUCKET, "empty", part_size=MIN_PART_SIZE) as w:
        pass
    assert w.result is not None and w.result.size == 0
    assert s3.client.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""


def test_an_error_in_the_block_aborts_and_stores_nothing(s3: S3) -> None:
    with pytest.raises(RuntimeError, match="boom"), s3.multipart_writer(BUCKET, "broken") as w:
        w.write(os.urandom(MIN_PART_SIZE + 1))  # one part already uploaded
        raise RuntimeError("boom")
    assert w.result is None
    assert _pending_uploads(s3) == []
    assert "Contents" not in s3.client.list_objects_v2(Bucket=BUCKET, Prefix="broken")


def test_a_failing_part_upload_aborts(s3: S3) -> None:
    w = s3.multipart_writer(BUCKET, "fails", part_size=MIN_PART_SIZE)
    real = w._client.upload_part

    def flaky(**kw: Any) -> Any:
        if kw["PartNumber"] == 2:
            raise ProviderError("s3", "upload part", "injected")
        return real(**kw)

    w._client = type(
        "C",
        (),
        {
            "upload_part": staticmethod(flaky),
            "abort_multipart_upload": staticmethod(s3.client.abort_multipart_upload),
            "complete_multipart_upload": staticmethod(s3.client.complete_multipart_upload),
        },
    )()
    with pytest.raises(ProviderError, match="injected"), w:
        w.write(os.urandom(MIN_PART_SIZE * 3))
    assert _pending_uploads(s3) == []
    assert "Contents" not in s3.client.list_objects_v2(Bucket=BUCKET, Prefix="fails")


def test_in_flight_parts_are_bounded(s3: S3) -> None:
    """At most max_inflight parts are held besides the buffer: memory is bounded whatever the stream size."""
    w = s3.multipart_writer(BUCKET, "bounded", part_size=MIN_PART_SIZE, max_inflight=2)
    real = w._client.upload_part
    lock, live, peak = threading.Lock(), [0], [0]

    def counting(**kw: Any) -> Any:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        try:
            return real(**kw)
        finally:
            with lock:
                live[0] -= 1

    w._client = type(
        "C",
        (),
        {
            "upload_part": staticmethod(counting),
            "abort_multipart_upload": staticmethod(s3.client.abort_multipart_upload),
            "complete_multipart_upload": staticmethod(s3.client.complete_multipart_upload),
        },
    )()
    chunk = os.urandom(MIN_PART_SIZE)
    with w:
        for _ in range(6):
            w.write(chunk)
            assert w._fill < MIN_PART_SIZE
    assert w.result is not None and w.result.parts == 6
    assert 1 <= peak[0] <= 2


def test_part_size_below_the_s3_minimum_is_refused(s3: S3) -> None:
    with pytest.raises(ValueError, match="at least"):
        MultipartWriter(s3.client, BUCKET, "k", part_size=1024)


def test_missing_bucket_is_a_provider_error_naming_the_credential(s3: S3) -> None:
    with pytest.raises(ProviderError, match="as test"):
        s3.multipart_writer("no-such-bucket-here", "k")


def test_config_reads_report_absence_as_none(s3: S3) -> None:
    assert s3.versioning(BUCKET) == "Enabled"
    assert s3.object_lock(BUCKET) is None
    assert s3.encryption(BUCKET) in (None, [])  # moto may report a default rule
    s3.client.create_bucket(Bucket="plain-bucket-x")
    assert s3.versioning("plain-bucket-x") is None
    assert s3.public_access_block("plain-bucket-x") is None


def test_attempt_reports_allowed_and_refused() -> None:
    with mock_aws():
        s3 = S3(access_key_id="test", secret_access_key="test", region="us-east-1")
        s3.client.create_bucket(Bucket="probe-bucket")
        ok = s3.attempt("ListBucket", s3.client.list_objects_v2, Bucket="probe-bucket")
        missing = s3.attempt("GetObject", s3.client.get_object, Bucket="probe-bucket", Key="nope")
    assert ok.allowed and str(ok) == "ListBucket: allowed"
    assert not missing.allowed and missing.code == "NoSuchKey" and "refused (NoSuchKey)" in str(missing)


def test_json_round_trip(s3: S3) -> None:
    vid = s3.put_json(BUCKET, "m.json", {"a": 1})
    assert vid and s3.get_json(BUCKET, "m.json", vid) == {"a": 1}
    assert [o.key for o in s3.list_objects(BUCKET)] == ["m.json"]
