"""Point-in-time restore of the Supabase project: validate, plan, apply, wait, verify, record.

One module per concern; every name notebooks and tests use is importable from here
(``from runbooks.procedures import pitr``):

- :mod:`.target`: the target time. :func:`validate_request` and :func:`check_target` refuse
  (:class:`~runbooks.errors.BadParameter` naming the parameter and the fix, nothing changed) a missing
  target outside the sandbox, a target that is malformed, without a zone, in the future, outside the PITR
  window the Management API reports, or when PITR is disabled.
- :mod:`.plan`: :func:`make_plan` (a :class:`PitrPlan`, a :class:`runbooks.plan.Plan`) shows the exact API
  call, what becomes unavailable and how long the last restore of this environment took.
- :mod:`.apply`: :func:`apply_plan` (it requires the authorisation ``runbooks.guard_apply`` returned, see
  :mod:`runbooks.plan`) re-reads the PITR window and re-checks the target right before the
  change (the window moves, PITR can be switched off between plan and apply), creates a restore point,
  calls restore-pitr, and polls project status and services health until everything is
  ``ACTIVE_HEALTHY``; every step is a :class:`Timeline` event.
- :mod:`.verify`: markers (``restore_markers``, on the twin). :func:`prepare_apply` fixes the target of
  the apply and the markers expected on either side of it; :func:`verify_markers` checks that markers
  committed before the target are present and those after it absent (``WARN``, "not verifiable here",
  where there is nothing to judge, never a pass).

An empty ``target_time`` is allowed only in the ``sandbox``: there it means "now", the moment of the
apply, bracketed by two markers so the rewind is proved. Anywhere else the operator states the instant
(:data:`SANDBOX`): "now" would silently rewind whatever the runbook was run against.
"""

from __future__ import annotations

from runbooks.plan import utcnow
from runbooks.procedures.pitr.apply import FAILED_STATES, HEALTHY, PitrFailed, Timeline, apply_plan, wait_healthy
from runbooks.procedures.pitr.plan import PROCEDURE, PitrPlan, last_restore_seconds, make_plan, restore_point_name
from runbooks.procedures.pitr.target import (
    EXAMPLE_TARGET,
    SANDBOX,
    check_target,
    parse_target,
    target_now,
    validate_request,
)
from runbooks.procedures.pitr.verify import (
    MARKER_SLACK,
    MARKERS_TABLE,
    ApplyTarget,
    add_marker,
    bracket_target,
    conclude,
    expected_markers,
    markers,
    prepare_apply,
    timeline_record,
    verify_markers,
    wait_past,
)

__all__ = [
    "EXAMPLE_TARGET",
    "FAILED_STATES",
    "HEALTHY",
    "MARKERS_TABLE",
    "MARKER_SLACK",
    "PROCEDURE",
    "SANDBOX",
    "ApplyTarget",
    "PitrFailed",
    "PitrPlan",
    "Timeline",
    "add_marker",
    "apply_plan",
    "bracket_target",
    "check_target",
    "conclude",
    "expected_markers",
    "last_restore_seconds",
    "make_plan",
    "markers",
    "parse_target",
    "prepare_apply",
    "restore_point_name",
    "target_now",
    "timeline_record",
    "utcnow",
    "validate_request",
    "verify_markers",
    "wait_healthy",
    "wait_past",
]
