"""The resumable state of key rotations (written by ``procedures.rotation``, read by
``checks.config_placement``).

The state of a rotation (per key: completed steps, the old and new credential's id and fingerprint, never a
value) is kept in the archive store as ``state/rotate-keys/<environment>.json`` (under a local archive's root,
or in the bucket), written conditionally (:class:`RotationStore`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runbooks.archive.objects import LocalObjects, Objects
from runbooks.plan import utcnow
from runbooks.state.twin import twin_id

#: status of a rotation whose old credential must be revoked by hand, then confirmed with ``manual_revoked``
AWAITING_MANUAL_REVOKE = "awaiting_manual_revoke"
#: the notebook parameter by which on-call confirms a manual revoke
MANUAL_PARAM = "manual_revoked"


class RotationFailed(RuntimeError):
    """A step failed after changes began; the state file says where to resume."""


class StateConflict(RotationFailed):
    """The rotation state changed under this run (another run resumed the same rotation)."""


def stamp() -> str:
    """Now, as the state file writes it: ISO 8601 UTC to the second, with a ``Z``."""
    return utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class KeyRotation:
    key: str
    provider: str
    status: str = "in_progress"  #: in_progress | awaiting_manual_revoke | done
    completed: list[str] = field(default_factory=list)
    old_id: str | None = None
    old_fingerprint: str | None = None
    new_id: str | None = None
    new_name: str | None = None
    new_fingerprint: str | None = None
    issuing: bool = False  #: the issue call was made; on resume, look for the new credential first
    deploys: dict[str, str] = field(default_factory=dict)
    started_at: str = field(default_factory=stamp)
    updated_at: str = field(default_factory=stamp)
    runs: list[str] = field(default_factory=list)
    last_error: str | None = None

    def done(self, step: str) -> bool:
        return step in self.completed


#: the environment served by the local twin (inventory ``endpoints_from_sandbox``)
TWIN_ENVIRONMENT = "sandbox"


class RotationStore:
    """``state/rotate-keys/<environment>.json`` in the archive store (local: under the archive root; S3: in the
    bucket), one entry per key, written conditionally. The twin's state is keyed by the twin's identity
    (``sandbox.<twin id>.json``, see :mod:`runbooks.state.twin`): a fresh twin never looks half-rotated
    because of another twin's run.

    The first :meth:`load` claims the version read; every :meth:`save` replaces exactly that version (or
    creates the object if there was none) and claims the new one. If another run wrote the state in between
    (two resumers of one rotation, e.g. after a lock's lease was taken over), the save fails with
    :class:`StateConflict` and this run stops: only one of them proceeds.
    """

    def __init__(self, objects: Objects, key: str, path: Path | None = None):
        self.objects = objects
        self.key = key
        #: the file, for a local archive (None in a bucket)
        self.path = path
        self._claimed: str | None = None
        self._loaded = False

    @classmethod
    def for_environment(
        cls, environment: str, archive_root: Path | str | None = None, sandbox_root: Path | None = None
    ) -> RotationStore:
        from runbooks.archive.stores import open_store

        name = environment
        if environment == TWIN_ENVIRONMENT:
            tid = twin_id(sandbox_root)
            name = f"{environment}.{tid}" if tid else environment
        store = open_store(archive_root, environment)
        key = f"state/rotate-keys/{name}.json"
        path = store.objects.path(key) if isinstance(store.objects, LocalObjects) else None
        return cls(store.objects, key, path)

    def load(self) -> dict[str, KeyRotation]:
        got = self.objects.get(self.key)
        if not self._loaded:
            self._loaded, self._claimed = True, got.etag if got is not None else None
        if got is None:
            return {}
        raw = json.loads(got.data)
        return {k: KeyRotation(**v) for k, v in raw.items()}

    def save(self, rotations: dict[str, KeyRotation]) -> None:
        if not self._loaded:
            self.load()
        data = json.dumps({k: asdict(v) for k, v in rotations.items()}, indent=1, sort_keys=True).encode()
        if self._claimed is None:
            etag = self.objects.create_if_absent(self.key, data)
        else:
            etag = self.objects.replace_if_match(self.key, data, self._claimed)
        if etag is None:
            raise StateConflict(
                f"{self.key}: another run wrote the rotation state since this run read it; stopping so that only "
                "one run resumes the rotation. Check `runbooks runs list --procedure rotate-keys`, then re-run to "
                "resume from the state as it is now"
            )
        self._claimed = etag

    def active(self, key: str) -> KeyRotation | None:
        r = self.load().get(key)
        return r if r is not None and r.status != "done" else None


def manual_instruction(rotation: KeyRotation, environment: str) -> str:
    """What on-call does to finish a rotation awaiting a manual revoke."""
    return (
        f"revoke the previous client secret ({rotation.old_fingerprint}) in the identity provider's console "
        f"(the new one, {rotation.new_fingerprint}, is in the group and every service runs it), then re-run "
        f"`runbooks run rotate-keys --env {environment} -p keys={rotation.key} -p {MANUAL_PARAM}={rotation.key} "
        f"--apply --confirm {environment}`"
    )
