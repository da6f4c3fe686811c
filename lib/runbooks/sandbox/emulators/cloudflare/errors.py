"""The one error of the Cloudflare twin: what the state model raises and the app renders as v4's envelope."""

from __future__ import annotations


class CloudflareError(Exception):
    """An API error: HTTP ``status``, Cloudflare's error ``code`` and ``message`` (see :mod:`.envelope`)."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
