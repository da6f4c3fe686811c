"""Where the nightly backups are and how they are named (written by ``procedures.backup``, read by the restore
drill and by ``checks.backup_posture``).

Objects: ``<prefix>YYYY/MM/DD/<database>-<YYYYmmddTHHMMSSZ>.dump.zst.age`` (:func:`backup_key`) and, next to it,
the sidecar ``<same key>.manifest.json`` (:func:`manifest_key`) in the format :data:`MANIFEST_FORMAT`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from runbooks.providers.s3 import S3, ObjectRef

MANIFEST_FORMAT = "spectral-backup/1"
BACKUP_SUFFIX = ".dump.zst.age"
MANIFEST_SUFFIX = ".manifest.json"


def backup_key(prefix: str, database: str, when: datetime) -> str:
    when = when.astimezone(UTC)
    return f"{prefix}{when:%Y/%m/%d}/{database}-{when:%Y%m%dT%H%M%SZ}{BACKUP_SUFFIX}"


def manifest_key(key: str) -> str:
    return key + MANIFEST_SUFFIX


def latest_backup(s3: S3, bucket: str, prefix: str) -> ObjectRef | None:
    """The newest backup object under ``prefix`` (keys embed their UTC timestamp; the newest sorts last)."""
    found = [o for o in s3.list_objects(bucket, prefix) if o.key.endswith(BACKUP_SUFFIX)]
    return max(found, key=lambda o: (o.key.rsplit("/", 1)[-1].rsplit("-", 1)[-1], o.key), default=None)
