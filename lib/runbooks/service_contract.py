"""The service contract: what each Spectral service must report so that runbooks can verify it.

docs/SERVICE_CONTRACT.md is the reference. A service's health report (its ``GET <probes.health_path>``
answer, or for a background worker, which has no URL on Render, its latest log line starting with
``probes.heartbeat_marker``) is a JSON object with at least:

- ``generation``: the ``SPECTRAL_GENERATION`` the process started with;
- ``keys``: rotating key name -> ``sha256:<12 hex>`` fingerprint of the value the process holds;
- ``healthy``: whether the service works with what it holds;
- ``commit``: for a service Render builds from the repository, the commit it runs (``RENDER_GIT_COMMIT``).

A service that does not report these cannot be verified: checks say so (WARN "not verifiable"), never PASS.
This module reads reports and deploys; it calls nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: fields every health report must carry
REQUIRED = ("generation", "keys", "healthy")
DOC = "docs/SERVICE_CONTRACT.md"


def gap(body: dict[str, Any]) -> str | None:
    """Why ``body`` does not implement the contract (None if it does)."""
    missing = [f for f in REQUIRED if f not in body]
    if not missing:
        return None
    return f"its health report has no {', '.join(missing)}: the service does not implement the service contract ({DOC})"


def image_generation(ref: str | None) -> str | None:
    """The tag of an image reference (``registry/repo:TAG``; ``...@sha256:...`` or no tag -> None)."""
    if not ref or "@" in ref.rsplit("/", 1)[-1]:
        return None
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@dataclass(frozen=True)
class Build:
    """What a live deploy runs: an image whose tag is the generation, or a commit of the repository."""

    kind: str  #: "image", "commit" or "unknown"
    ref: str | None
    generation: str | None  #: known from the deploy alone only for a tagged image

    def describe(self) -> str:
        if self.kind == "image":
            return f"image {self.ref} (generation {self.generation})"
        if self.kind == "commit":
            return f"commit {str(self.ref)[:12]}"
        return f"{self.ref or 'an unnamed build'} (neither a tagged image nor a commit)"


def build_of(deploy: Any) -> Build:
    """How ``deploy`` (a :class:`runbooks.providers.render.Deploy`) was built."""
    image = getattr(deploy, "image_ref", None)
    generation = image_generation(image)
    if image and generation:
        return Build("image", image, generation)
    commit = getattr(deploy, "commit_id", None)
    if commit:
        return Build("commit", commit, None)
    return Build("unknown", image, None)
