"""The one error of the Supabase twin: what the state model raises and the app renders as ``{"message": ...}``."""

from __future__ import annotations


class SupabaseError(Exception):
    """An API error: HTTP ``status`` and the Management API's ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
