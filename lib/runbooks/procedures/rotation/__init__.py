"""Rotate key material held in an environment's shared env group, resumably.

For each requested key (a rotating key of the inventory), in lock step across keys:

1. ``preflight``: the key is in the group and on no service; every service is linked to the group and
   healthy, and (fresh rotation) runs the group's current value; the provider knows the current credential.
2. ``issue``: a new credential at its provider (Supabase API key; a new Cloudflare API token with the
   current token's policies, created with the runbooks' own token, which is never touched; an OAuth client
   secret read from the inventory's ``source`` reference). Old and new are both valid until ``revoke_old``.
3. ``write_group``: the new value into the env group.
4. ``deploy``: deploy every linked service and wait until each deploy is live.
5. ``verify_services``: each service reports the new value's fingerprint and works.
6. ``revoke_old``: revoke the previous credential at its provider.
7. ``verify_old_refused``: the previous credential is refused.

An OAuth client secret is revoked by hand in the identity provider's console: the run cannot do it, nor prove
it. Its rotation stops after ``verify_services`` with status ``awaiting_manual_revoke`` (in the state file and
the run record) and a row saying what to do; on-call revokes the old secret, then re-runs with
``manual_revoked=<KEY>``, which completes it. Until then ``audit-config-placement`` reports it as WARN.

Resumable: the state of a rotation (per key: completed steps, the old and new credential's id and
fingerprint, never a value) is kept in the archive store as ``state/rotate-keys/<environment>.json`` (under a
local archive's root, or in the bucket), written conditionally (:class:`RotationStore`). A run
that stops half-way is continued by the next run: every step checks its precondition against the
providers (the group already holds the new value, the old key is already gone...) so nothing is issued
twice. A credential whose value cannot be read back (a Cloudflare token) and that an interrupted run
issued but never wrote to the group is deleted and replaced, so at most one new credential is live.
Values only ever live in memory, at the provider and in the env group.

One module per concern; every name the notebook and tests use is importable from here
(``from runbooks.procedures import rotation``):

- :mod:`.params`: the ``keys`` and ``manual_revoked`` parameters (:func:`parse_keys`, :func:`parse_manual_revoked`)
  and the two waits (:func:`parse_wait`);
- :mod:`runbooks.state.rotation` (shared with ``checks.config_placement``, below both): the persisted state
  (:class:`KeyRotation`, :class:`RotationStore`), :func:`manual_instruction`, :class:`RotationFailed`;
- :mod:`.issuers`: one issuer per provider kind, registered by kind (:data:`ISSUERS`, :func:`build_issuers`);
- :mod:`.rotator`: :class:`KeyRotator`, its :class:`Plan` (a :class:`runbooks.plan.Plan`) and the steps;
- :mod:`.errors`: :class:`RotationRefused` (nothing changed, exit 2) and the test hook's :class:`Interrupted`.
"""

from __future__ import annotations

from runbooks.procedures.rotation.errors import (
    Interrupted,
    RotationRefused,
)
from runbooks.procedures.rotation.issuers import (
    ISSUERS,
    CloudflareTokenIssuer,
    Issued,
    Issuer,
    IssuerContext,
    OAuthSecretIssuer,
    SupabaseKeyIssuer,
    UnknownIssuer,
    build_issuers,
    issuer,
)
from runbooks.procedures.rotation.params import (
    parse_keys,
    parse_manual_revoked,
    parse_wait,
)
from runbooks.procedures.rotation.rotator import (
    INTERRUPT_ENV,
    STEPS,
    KeyRotator,
    Plan,
)
from runbooks.state.rotation import (
    AWAITING_MANUAL_REVOKE,
    MANUAL_PARAM,
    TWIN_ENVIRONMENT,
    KeyRotation,
    RotationFailed,
    RotationStore,
    StateConflict,
    manual_instruction,
    stamp,
)

__all__ = [
    "AWAITING_MANUAL_REVOKE",
    "INTERRUPT_ENV",
    "ISSUERS",
    "MANUAL_PARAM",
    "STEPS",
    "TWIN_ENVIRONMENT",
    "CloudflareTokenIssuer",
    "Interrupted",
    "Issued",
    "Issuer",
    "IssuerContext",
    "KeyRotation",
    "KeyRotator",
    "OAuthSecretIssuer",
    "Plan",
    "RotationFailed",
    "RotationRefused",
    "RotationStore",
    "StateConflict",
    "SupabaseKeyIssuer",
    "UnknownIssuer",
    "build_issuers",
    "issuer",
    "manual_instruction",
    "parse_keys",
    "parse_manual_revoked",
    "parse_wait",
    "stamp",
]
