"""The rotation's parameters: ``keys`` (which rotating keys), ``manual_revoked`` (keys whose old value
on-call revoked by hand) and the two waits (``deploy_timeout_seconds``, ``verify_timeout_seconds``), each
refused with :class:`~runbooks.errors.BadParameter` when unusable."""

from __future__ import annotations

from collections.abc import Iterable

from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment, RotatingKey
from runbooks.state.rotation import MANUAL_PARAM


def _names(value: str | Iterable[str]) -> list[str]:
    return [k.strip() for k in (value.split(",") if isinstance(value, str) else value) if k.strip()]


def parse_keys(env: Environment, keys: str | Iterable[str]) -> list[RotatingKey]:
    """The inventory's rotating keys named in ``keys`` (comma list); anything else is refused
    (:class:`BadParameter`: an empty list, unknown names, code-coupled values)."""
    names = _names(keys)
    known = [k.name for k in env.config.rotating_keys]
    fix = f"give a comma list of rotating keys of {env.environment} [one of: {', '.join(known)}]"
    if not names:
        raise BadParameter("keys", keys, "names no key", fix)
    unknown = [n for n in names if n not in known]
    if unknown:
        coupled = [n for n in unknown if n in env.config.code_coupled]  # names of the inventory: may be shown
        problem = f"{len(unknown)} name(s) not rotating key material of the inventory"
        if coupled:
            problem += f" ({', '.join(coupled)}: code-coupled, set on each service at deploy time, never rotated)"
        raise BadParameter("keys", keys, problem, fix)
    return [env.config.rotating(n) for n in dict.fromkeys(names)]


def parse_manual_revoked(env: Environment, keys: list[RotatingKey], value: str | Iterable[str]) -> set[str]:
    """Keys whose old value on-call confirms having revoked by hand (``manual_revoked``): each must be one of
    the selected ``keys`` and one whose old value the runbook cannot revoke itself (an OAuth client secret)."""
    names = _names(value)
    manual = [k.name for k in keys if k.provider == "oauth"]
    wrong = [n for n in names if n not in manual]
    if wrong:
        raise BadParameter(
            MANUAL_PARAM,
            value,
            f"{len(wrong)} name(s) not a selected key whose old value is revoked by hand",
            (
                f"list only selected keys revoked in a provider's console [one of: {', '.join(manual)}]"
                if manual
                else "leave it empty: the runbook revokes the selected keys itself"
            ),
        )
    return set(names)


#: the longest wait a rotation accepts for one step (an hour): more is a typo, not a slow service
MAX_WAIT_SECONDS = 3600


def parse_wait(name: str, seconds: float) -> float:
    """A wait in seconds (``deploy_timeout_seconds``, ``verify_timeout_seconds``): from 1 to an hour."""
    if not 1 <= seconds <= MAX_WAIT_SECONDS:
        raise BadParameter(
            name,
            seconds,
            f"must be from 1 to {MAX_WAIT_SECONDS} seconds",
            "give how long the step may take on this environment, e.g. 180 for a deploy, 20 for the verification",
            allowed=(seconds,),  # an int parameter's number of seconds is no secret: the message repeats it
        )
    return float(seconds)
