"""The providers by name, populated here and only here: adding a vendor is its module plus one line.

``get("render")`` is the provider class, ``create("render", env)`` the provider built from the
inventory (a context manager: ``with create("render", env) as render: ...``). The key is the provider's
:attr:`~runbooks.providers.base.Provider.name`, or the name of the surface for a vendor with several
(``supabase.keys``, ``supabase.platform``: the same Management API, more calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from runbooks.providers.base import Provider
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.providers.render import RenderProvider
from runbooks.providers.s3 import S3
from runbooks.providers.supabase import SupabaseManagement
from runbooks.providers.supabase_keys import SupabaseKeys
from runbooks.providers.supabase_platform import SupabasePlatform

if TYPE_CHECKING:
    from runbooks.inventory.models import Environment

P = TypeVar("P", bound=type[Provider])

_PROVIDERS: dict[str, type[Provider]] = {}


class UnknownProvider(LookupError):
    """No provider is registered under that name; the message lists the names that are."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"no provider named {name!r}; known: {', '.join(names())}")


def register(cls: P, key: str | None = None) -> P:
    """Register ``cls`` under ``key`` (default: its name); a name registered twice is refused."""
    key = key or cls.name
    if key in _PROVIDERS:
        raise ValueError(f"provider {key!r} is already registered ({_PROVIDERS[key].__name__})")
    _PROVIDERS[key] = cls
    return cls


def get(name: str) -> type[Provider]:
    """The provider class registered as ``name`` (:class:`UnknownProvider` otherwise)."""
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None


def create(name: str, env: Environment) -> Provider:
    """The provider ``name`` built from ``env`` (endpoints and credentials from the inventory)."""
    return get(name).from_environment(env)


def names() -> list[str]:
    return sorted(_PROVIDERS)


# -- the registry: one line per provider -------------------------------------------------------------
register(CloudflareProvider)
register(RenderProvider)
register(S3)
register(SupabaseManagement)
register(SupabaseKeys, "supabase.keys")
register(SupabasePlatform, "supabase.platform")
