"""Recorded results as the site and `runs show` read them, and the findings diff between two runs."""

from __future__ import annotations

from runbooks.audit.diff import diff_findings
from runbooks.audit.results import check_counts, check_outcomes, check_rows, metrics, table_rows


def test_check_rows_recognises_check_tables_only() -> None:
    rows = [{"check": "a", "status": "PASS"}, {"check": "b", "status": "fail", "subject": "x"}]
    assert check_rows(rows) == rows
    assert check_rows({"columns": ["check", "status"], "data": rows}) == rows  # a DataFrame recorded as a table
    assert check_rows([{"key": "K", "step": "issue"}]) is None and table_rows([{"key": "K"}]) == [{"key": "K"}]
    assert check_rows([]) is None and check_rows({"check": "a"}) is None and check_rows(3) is None
    assert check_counts({"checks": rows, "other": 1}) == {"PASS": 1, "WARN": 0, "FAIL": 1}
    assert [o.key for o in check_outcomes({"checks": rows})] == ["checks: a", "checks: b / x"]


def test_metrics_found_where_the_runbooks_record_them() -> None:
    assert metrics({"rto_seconds": 42.5, "rpo_seconds": 3600}) == {"RTO": 42.5, "RPO": 3600.0}
    assert metrics({"drill": {"rto_seconds": 7}, "stored": {"size": 2048}}) == {"RTO": 7.0, "backup size": 2048.0}
    assert metrics({"stored": {"size": True}, "rto_seconds": "slow"}) == {}


def test_findings_diff_started_stopped_and_changed() -> None:
    before = {"dns.proxied / app": "PASS", "tls.expiry / app": "FAIL", "tls.name / ops": "PASS", "gone": "WARN"}
    after = {"dns.proxied / app": "FAIL", "tls.expiry / app": "PASS", "tls.name / ops": "PASS", "new": "FAIL"}
    d = diff_findings(before, after)
    assert [(c.key, c.before, c.after) for c in d.started_failing] == [
        ("dns.proxied / app", "PASS", "FAIL"),
        ("new", "absent", "FAIL"),
    ]
    assert [(c.key, c.before, c.after) for c in d.stopped_failing] == [("tls.expiry / app", "FAIL", "PASS")]
    assert [(c.key, c.before, c.after) for c in d.changed] == [("gone", "WARN", "absent")]
    assert d.unchanged == 1 and not d.empty
    assert diff_findings(after, after).empty


def test_result_views_render_timelines_as_tables() -> None:
    from runbooks.audit.pages import environment, result_views

    results = {
        "pitr_timeline": {"target": "T", "events": [{"at": "t1", "event": "restore requested"}, {"at": "t2"}]},
        "checks": [{"check": "c", "subject": "<s>", "status": "fail", "evidence": "e", "remediation": "r"}],
        "n": 3,
    }
    views = result_views(results)
    assert [v["kind"] for v in views] == ["mapping", "checks", "scalar"]
    assert views[1]["rows"][0]["status"] == "FAIL" and views[1]["counts"]["FAIL"] == 1
    html = (
        environment()
        .from_string(
            '{% from "macros.html.j2" import result_block %}{% for r in rs %}{{ result_block(r) }}{% endfor %}'
        )
        .render(rs=views)
    )
    assert '<table class="data nested">' in html and "<td>restore requested</td>" in html
    assert 'class="ck-row ck-FAIL"' in html and "&lt;s&gt;" in html and "<s>" not in html
