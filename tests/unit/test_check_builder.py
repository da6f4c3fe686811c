"""The check builder: ids registered once, crashes named, results in a stable order, facts fetched once."""

from __future__ import annotations

import threading
import time

import pytest

from runbooks.checks import Check, CheckFamily, CheckResult, DuplicateCheck, Memo, Status, run_checks
from runbooks.checks.backup_posture import BACKUP
from runbooks.checks.config_placement import CONFIG
from runbooks.checks.dns_posture import EDGE
from runbooks.checks.platform_posture import PLATFORM
from runbooks.checks.split_triggers import SPLIT

DEMO = CheckFamily("demo")


@DEMO.check("demo.even", title="the number is even")
def even(n: int) -> CheckResult:
    if n % 2:
        return even.fail(str(n), f"{n} is odd", "add one")
    return even.ok(str(n), f"{n} is even")


@DEMO.check("demo.slow")
def slow(n: int, delay: float) -> list[CheckResult]:
    """A check that takes its time, then answers two rows."""
    time.sleep(delay)
    return [slow.ok(f"{n}a", "first"), slow.warn(f"{n}b", "second", "look")]


@DEMO.check("demo.broken")
def broken(n: int) -> CheckResult:
    raise ConnectionError(f"host {n} unreachable")


def test_a_check_is_its_function_and_makes_rows_with_its_id() -> None:
    assert isinstance(even, Check) and even.id == "demo.even" and even.title == "the number is even"
    assert even(2) == CheckResult("demo.even", "2", Status.PASS, "2 is even")
    assert even(3) == CheckResult("demo.even", "3", Status.FAIL, "3 is odd", "add one")
    assert slow.title == "A check that takes its time, then answers two rows."


def test_a_family_lists_its_checks_in_registration_order() -> None:
    assert DEMO.ids() == ["demo.even", "demo.slow", "demo.broken"]
    assert DEMO["demo.slow"] is slow and len(DEMO) == 3 and list(DEMO) == [even, slow, broken]


def test_an_id_registered_twice_is_refused() -> None:
    family = CheckFamily("twice")

    @family.check("x.one")
    def one() -> CheckResult:
        return one.ok("-", "fine")

    with pytest.raises(DuplicateCheck, match=r"'x\.one' is registered twice in family 'twice'"):

        @family.check("x.one")
        def again() -> CheckResult:
            return again.ok("-", "fine")

    assert family.ids() == ["x.one"]


def test_a_crash_is_a_fail_row_naming_the_check_and_the_exception() -> None:
    [row] = run_checks([broken.on("host-7", 7)])
    assert (row.check, row.subject, row.status) == ("demo.broken", "host-7", Status.FAIL)
    assert row.evidence.startswith("check could not run: ConnectionError: host 7 unreachable at test_check_builder.py:")
    assert "<lambda>" not in row.evidence and row.remediation


def test_results_keep_the_order_of_the_checks_when_run_concurrently() -> None:
    checks = [slow.on("s1", 1, 0.2), even.on("3", 3), broken.on("b", 0), slow.on("s2", 2, 0.0), even.on("4", 4)]
    started = time.monotonic()
    rows = run_checks(checks, max_workers=8)
    assert time.monotonic() - started < 1.0
    assert [(r.check, r.subject, r.status) for r in rows] == [
        ("demo.slow", "1a", Status.PASS),
        ("demo.slow", "1b", Status.WARN),
        ("demo.even", "3", Status.FAIL),
        ("demo.broken", "b", Status.FAIL),
        ("demo.slow", "2a", Status.PASS),
        ("demo.slow", "2b", Status.WARN),
        ("demo.even", "4", Status.PASS),
    ]
    assert rows == run_checks(checks, max_workers=1)


def test_a_bound_check_knows_its_id_and_subject() -> None:
    fn = even.on("six", 6)
    assert (fn.check_id, fn.subject) == ("demo.even", "six")
    assert fn() == even(6)


def test_memo_fetches_each_fact_once_across_threads_and_retries_a_failed_fetch() -> None:
    memo, calls, lock = Memo(), [], threading.Lock()

    def fetch() -> int:
        with lock:
            calls.append(1)
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=lambda: memo.get("answer", fetch)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert memo.get("answer", fetch) == 42 and len(calls) == 1

    def failing() -> int:
        raise TimeoutError("slow vendor")

    with pytest.raises(TimeoutError):
        memo.get("other", failing)
    assert memo.get("other", lambda: 7) == 7


def test_every_family_registers_its_checks_once_and_ids_are_unique_across_families() -> None:
    families = [EDGE, BACKUP, CONFIG, PLATFORM, SPLIT]
    ids = [i for f in families for i in f.ids()]
    assert all(len(f) for f in families)
    assert [c.id for f in families for c in f if not c.title] == []
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"dns.proxied", "tls.expiry", "backup.checksum", "config.rotation_complete", "supabase.vector"} <= set(ids)


def test_every_check_a_twin_fault_names_is_registered_in_its_runbooks_family() -> None:
    from runbooks.sandbox.faults import catalogue

    family = {
        "check-dns-posture": EDGE,
        "verify-backup-posture": BACKUP,
        "audit-config-placement": CONFIG,
        "verify-platform-posture": PLATFORM,
        "split-trigger-review": SPLIT,
    }
    named = [
        (c.runbook, spec.split("@", 1)[0])
        for fault in catalogue().values()
        for c in fault.caught_by
        if c.runbook in family
        for spec in c.checks
    ]
    assert named, "no fault is caught by a check family"
    assert [(r, i) for r, i in named if i not in family[r].ids()] == []
