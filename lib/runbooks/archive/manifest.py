"""The run manifest (``run.json``): the audit record of one execution.

Shared contract between the runner (which fills it) and the archive (which stores, hashes, chains,
indexes and verifies it). Parameters are recorded *as given*: secret references stay references.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KERNEL_DIED = "kernel_died"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"


class RunError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str  #: exception name, or "Timeout" / "DeadKernel" / "Interrupted" / "Refused"
    message: str  #: redacted
    cell_index: int | None = None


class LockEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: str
    acquired_at: datetime
    #: set when a lock left by a dead process was taken over
    took_over_from: dict[str, Any] | None = None


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    run_id: str
    procedure: str
    notebook_sha256: str  #: of the source notebook, before parameters were injected
    parameters: dict[str, Any]  #: as given (references, not values)
    environment: str
    actor: str
    trigger: str  #: manual | schedule
    host: str
    code_version: str  #: git describe of the checkout, or the package version
    destructive: bool = False
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    status: RunStatus
    error: RunError | None = None
    lock: LockEvent | None = None
    results: dict[str, Any] = Field(default_factory=dict)  #: runbooks.record(...) values, redacted
    #: relative path -> sha256 of every other file in the run directory (filled by the archive)
    files: dict[str, str] = Field(default_factory=dict)
