"""The project's auth users and auth config, without HTTP: the probe user the runbooks sign in with
(its password is made once and handed back to be written as a sandbox secret), password checks, and
``jwt_exp`` (the access tokens' lifetime: 5 s in the twin, a day with fault ``auth-token-lifetime-long``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from runbooks.sandbox.emulators.common import JsonState
from runbooks.sandbox.emulators.supabase.errors import SupabaseError
from runbooks.sandbox.emulators.supabase.values import AUTH_CONFIG, USERS

PROBE_EMAIL = "runbook-probe@runspectral.com"
DEFAULT_JWT_EXP = 5
LONG_JWT_EXP = 86400


def password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()


class Users:
    """The ``auth_users`` and ``auth_config`` sections of the twin's state."""

    def __init__(self, state: JsonState):
        self.state = state

    def bootstrap(self, *, long_tokens: bool = False) -> str | None:
        """The default config and the probe user; returns the probe's password when it was just made."""
        password = None
        with self.state.update() as data:
            config = data.setdefault(AUTH_CONFIG, {"jwt_exp": DEFAULT_JWT_EXP})
            if long_tokens:
                config["jwt_exp"] = LONG_JWT_EXP
            users = data.setdefault(USERS, {})
            if PROBE_EMAIL not in users:
                password, salt = secrets.token_urlsafe(18), secrets.token_hex(8)
                users[PROBE_EMAIL] = {"id": str(uuid.uuid4()), "salt": salt, "hash": password_hash(password, salt)}
        return password

    def check_password(self, email: str, password: str) -> dict[str, Any]:
        """The user, if ``password`` is theirs (400 ``Invalid login credentials`` otherwise)."""
        user = self.state.section(USERS).get(email)
        if user is None or not hmac.compare_digest(user["hash"], password_hash(password, user["salt"])):
            raise SupabaseError(400, "Invalid login credentials")
        return dict(user)

    def jwt_exp(self, default: int = DEFAULT_JWT_EXP) -> int:
        return int(self.state.section(AUTH_CONFIG).get("jwt_exp", default))
