"""The Cloudflare twin's state model without HTTP: pagination, record filters and validation, settings,
token permissions and the v4 error envelopes. (Through HTTP and the official SDK: test_edge_twin.py and
test_cloudflare_tokens.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runbooks.inventory.models import Hostname, Posture
from runbooks.sandbox.edge.world import (
    ADMIN_TOKEN_NAME,
    PERMISSION_GROUPS,
    RUNTIME_TOKEN_NAME,
    EdgeWorld,
    generated_hostnames,
    hex_id,
)
from runbooks.sandbox.emulators.cloudflare.deps import bearer_value
from runbooks.sandbox.emulators.cloudflare.envelope import error_body, ok, paged
from runbooks.sandbox.emulators.cloudflare.errors import CloudflareError
from runbooks.sandbox.emulators.cloudflare.models import CloudflareBackend
from runbooks.sandbox.emulators.cloudflare.pagination import Page, paginate
from runbooks.sandbox.emulators.cloudflare.record_rules import RecordQuery, fqdn, valid_content

ZONE = "example.test"
ADMIN, RUNTIME = "admin-token-value", "runtime-token-value"
ORIGIN = "spectral-app.onrender.com"
HOSTS = [
    Hostname(name=f"app.{ZONE}", audience="users", target=ORIGIN, posture=Posture.PROXIED),
    Hostname(name=f"api.{ZONE}", audience="users", target="spectral-api.onrender.com", posture=Posture.DNS_ONLY),
    Hostname(
        name=f"docs.{ZONE}",
        audience="public",
        target="spectral-docs.pages.dev",
        posture=Posture.PROXIED,
        pages_project="spectral-docs",
    ),
]


def _build(tmp_path: Path, generated: int = 0) -> CloudflareBackend:
    world = EdgeWorld(tmp_path / "state.json")
    world.build(ZONE, HOSTS + generated_hostnames(ZONE, generated), frozenset(), ADMIN, runtime_token=RUNTIME)
    return CloudflareBackend(world)


@pytest.fixture
def cf(tmp_path: Path) -> CloudflareBackend:
    return _build(tmp_path)


def zid() -> str:
    return hex_id("zone", ZONE)


@contextmanager
def refused(code: int, status: int = 400) -> Iterator[None]:
    """The block raises a CloudflareError with this code and HTTP status."""
    with pytest.raises(CloudflareError) as e:
        yield
    assert (e.value.code, e.value.status) == (code, status), e.value.message


# -- pagination ----------------------------------------------------------------------------------------
def test_paginate_slices_and_reports_result_info() -> None:
    items = [{"i": i} for i in range(12)]
    first, last, past = paginate(items, 1, 5), paginate(items, 3, 5), paginate(items, 4, 5)
    assert [x["i"] for x in first.items] == [0, 1, 2, 3, 4]
    assert last.result_info() == {"page": 3, "per_page": 5, "count": 2, "total_count": 12, "total_pages": 3}
    assert past.items == [] and past.result_info()["total_pages"] == 3  # past the end: empty, not an error
    assert paginate([], 1, 5).result_info()["total_pages"] == 1


@pytest.mark.parametrize(("page", "per_page", "needle"), [(0, 5, "page"), (1, 4, "per_page"), (1, 5001, "per_page")])
def test_paginate_refuses_bad_pages(page: int, per_page: int, needle: str) -> None:
    with pytest.raises(CloudflareError) as e:
        paginate([], page, per_page)
    assert (e.value.status, e.value.code) == (400, 1004) and e.value.message.startswith(needle)


def test_walking_every_page_of_records_lists_each_once(tmp_path: Path) -> None:
    cf = _build(tmp_path, generated=12)  # 3 + 12 records
    pages = [cf.list_records(zid(), RecordQuery(), n, 5) for n in range(1, 5)]
    assert [p.result_info()["count"] for p in pages] == [5, 5, 5, 0]
    ids = [r["id"] for p in pages for r in p.items]
    assert len(ids) == len(set(ids)) == 15


def test_zone_and_project_lists_have_their_own_page_limits(cf: CloudflareBackend) -> None:
    assert [z["name"] for z in cf.list_zones(ZONE, 1, 50).items] == [ZONE]
    assert cf.list_zones("other.test", 1, 5).items == []
    with refused(1004):
        cf.list_zones(None, 1, 51)  # zones: at most 50 a page
    assert cf.list_projects(cf.world.account_id, 1, 1).per_page == 5  # Pages: raised to 5, not refused
    with refused(10000, 403):
        cf.list_projects("not-our-account", 1, 10)


# -- DNS records: filters, order, validation -------------------------------------------------------------
def names(page: Page) -> list[str]:
    return [r["name"].split(".")[0] for r in page.items]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (RecordQuery(name="api"), ["api"]),  # relative names are completed with the zone
        (RecordQuery(name=f"API.{ZONE}."), ["api"]),
        (RecordQuery(name_contains="AP"), ["api", "app"]),  # case-insensitive
        (RecordQuery(name_startswith="d"), ["docs"]),
        (RecordQuery(name_endswith="i." + ZONE), ["api"]),
        (RecordQuery(type="cname"), ["api", "app", "docs"]),
        (RecordQuery(type="A"), []),
        (RecordQuery(content=ORIGIN), ["app"]),
        (RecordQuery(proxied=False), ["api"]),
        (RecordQuery(proxied=False, name="docs"), []),  # all filters by default
        (RecordQuery(proxied=False, name="docs", match_any=True), ["api", "docs"]),
        (RecordQuery(order="name", descending=True), ["docs", "app", "api"]),
    ],
)
def test_record_filters(cf: CloudflareBackend, query: RecordQuery, expected: list[str]) -> None:
    got = names(cf.list_records(zid(), query, 1, 100))
    assert got == expected if query.order == "name" else sorted(got) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("@", ZONE), ("", ZONE), ("WWW.", f"www.{ZONE}"), (f"a.{ZONE}", f"a.{ZONE}"), (ZONE + ".", ZONE)],
)
def test_fqdn(name: str, expected: str) -> None:
    assert fqdn(ZONE, name) == expected


@pytest.mark.parametrize(
    ("rtype", "content", "valid"),
    [
        ("A", "198.51.100.1", True),
        ("A", "2001:db8::1", False),
        ("AAAA", "2001:db8::1", True),
        ("AAAA", "198.51.100.1", False),
        ("CNAME", "origin.example.net.", True),
        ("CNAME", "no_tld", False),
        ("TXT", "", False),
    ],
)
def test_valid_content(rtype: str, content: str, valid: bool) -> None:
    assert valid_content(rtype, content) is valid


def test_record_list_refuses_an_unknown_zone_before_a_bad_order(cf: CloudflareBackend) -> None:
    with refused(7003):
        cf.list_records("f" * 32, RecordQuery(order="bogus"), 1, 100)
    with refused(1004):
        cf.list_records(zid(), RecordQuery(order="bogus"), 1, 100)


def test_create_completes_the_name_and_the_record_is_readable(cf: CloudflareBackend) -> None:
    r = cf.create_record(zid(), {"name": "www", "type": "cname", "content": f"app.{ZONE}.", "proxied": True})
    assert (r["name"], r["type"], r["content"], r["ttl"]) == (f"www.{ZONE}", "CNAME", f"app.{ZONE}", 1)
    assert cf.get_record(zid(), r["id"]) == r
    assert cf.world.record(f"www.{ZONE}") == r  # the state DNS and HTTPS read
    with refused(81044, 404):
        cf.get_record(zid(), "0" * 32)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, 6007),  # not JSON
        (["a list"], 6007),
        ({"name": "x", "type": "A"}, 9000),
        ({"name": "x", "type": "MX", "content": "mail.example.test"}, 9004),
        ({"name": "x", "type": "A", "content": "2001:db8::1"}, 9005),
        ({"name": "x", "type": "AAAA", "content": "198.51.100.1"}, 9005),
        ({"name": "x", "type": "CNAME", "content": "not a host!"}, 9005),
        ({"name": "x", "type": "A", "content": "198.51.100.1", "proxied": "yes"}, 9003),
        ({"name": "x", "type": "TXT", "content": "v=1", "proxied": True}, 9003),
        ({"name": "x", "type": "TXT", "content": "v=1", "comment": "c" * 101}, 9104),
        ({"name": "app", "type": "A", "content": "198.51.100.1"}, 81053),  # app is a CNAME
    ],
)
def test_create_refuses_invalid_records_and_writes_nothing(cf: CloudflareBackend, body: Any, code: int) -> None:
    before = dict(cf.world.data["records"])
    with refused(code):
        cf.create_record(zid(), body)
    assert cf.world.data["records"] == before


def test_edit_keeps_fields_and_overwrite_resets_them(cf: CloudflareBackend) -> None:
    rid = hex_id("record", f"app.{ZONE}")
    edited = cf.write_record(zid(), rid, {"comment": "flipped"}, overwrite=False)
    assert (edited["content"], edited["proxied"], edited["comment"]) == (ORIGIN, True, "flipped")
    with refused(9000):  # PUT needs name, type and content
        cf.write_record(zid(), rid, {"proxied": False}, overwrite=True)
    put = cf.write_record(zid(), rid, {"name": "app", "type": "A", "content": "198.51.100.7"}, overwrite=True)
    assert (put["type"], put["proxied"], put["comment"], put["tags"]) == ("A", False, None, [])
    with refused(7003):  # the zone is checked first
        cf.write_record("f" * 32, rid, {}, overwrite=False)
    with refused(81044, 404):
        cf.write_record(zid(), "1" * 32, {}, overwrite=False)


# -- settings ------------------------------------------------------------------------------------------
def test_settings_edit_validates_name_and_value(cf: CloudflareBackend) -> None:
    assert cf.get_setting(zid(), "ssl")["value"] == "strict"
    assert cf.edit_setting(zid(), "ssl", {"value": "full"})["value"] == "full"
    assert cf.get_setting(zid(), "ssl")["value"] == "full"
    with refused(1007):
        cf.edit_setting(zid(), "ssl", {"value": "bogus"})
    with refused(1003, 404):
        cf.edit_setting(zid(), "bogus", {"value": "on"})
    with refused(7003):
        cf.get_setting("f" * 32, "ssl")
    assert cf.get_setting(zid(), "ssl")["value"] == "full"  # refusals changed nothing


# -- tokens --------------------------------------------------------------------------------------------
POLICY = [{"effect": "allow", "permission_groups": [{"id": PERMISSION_GROUPS["DNS Read"]}], "resources": {"r": "*"}}]


def test_only_the_api_tokens_permission_manages_tokens(cf: CloudflareBackend) -> None:
    admin, runtime = cf.authenticate(ADMIN), cf.authenticate(RUNTIME)
    runtime_id = hex_id("token", RUNTIME_TOKEN_NAME)
    assert {t["name"] for t in cf.list_tokens(admin, 1, 20).items} == {ADMIN_TOKEN_NAME, RUNTIME_TOKEN_NAME}
    for attempt in (
        lambda: cf.list_tokens(runtime, 1, 20),
        lambda: cf.get_token(runtime, runtime_id),
        lambda: cf.create_token(runtime, {"name": "x", "policies": POLICY}),
        lambda: cf.roll_token(runtime, runtime_id),
        lambda: cf.delete_token(runtime, runtime_id),
    ):
        with refused(9109, 403):
            attempt()
    assert cf.authenticate(RUNTIME)["id"] == runtime_id  # nothing was rolled or deleted


def test_created_token_value_is_shown_once_and_works(cf: CloudflareBackend) -> None:
    admin = cf.authenticate(ADMIN)
    created = cf.create_token(admin, {"name": " reader ", "policies": POLICY, "condition": "not an object"})
    assert created["name"] == "reader" and created["condition"] == {} and "value_hash" not in created
    me = cf.authenticate(created["value"])
    assert me["id"] == created["id"]
    assert all("value" not in t and "value_hash" not in t for t in cf.list_tokens(admin, 1, 20).items)
    with refused(9109, 403):  # DNS Read does not manage tokens
        cf.list_tokens(me, 1, 20)
    assert cf.verify(created["value"])["status"] == "active"


def test_roll_and_delete_refuse_the_old_value(cf: CloudflareBackend) -> None:
    admin = cf.authenticate(ADMIN)
    runtime_id = hex_id("token", RUNTIME_TOKEN_NAME)
    new_value = cf.roll_token(admin, runtime_id)
    with refused(10000, 403):
        cf.authenticate(RUNTIME)
    assert cf.authenticate(new_value)["id"] == runtime_id
    assert cf.delete_token(admin, runtime_id) == {"id": runtime_id}
    with refused(10000, 403):
        cf.authenticate(new_value)
    with refused(1003, 404):
        cf.get_token(admin, runtime_id)
    with refused(1003, 404):
        cf.roll_token(admin, runtime_id)


@pytest.mark.parametrize("value", ["", "not-a-token"])
def test_verify_answers_401_for_anything_but_an_active_token(cf: CloudflareBackend, value: str) -> None:
    with refused(1000, 401):
        cf.verify(value)


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (None, 6007, "Malformed JSON"),
        ({"name": " ", "policies": POLICY}, 1004, "name:"),
        ({"name": "x" * 121, "policies": POLICY}, 1004, "name:"),
        ({"name": "x", "policies": []}, 1004, "policies:"),
        ({"name": "x", "policies": [{"effect": "maybe"}]}, 1004, "policies[0].effect"),
        ({"name": "x", "policies": [{**POLICY[0], "permission_groups": [{}]}]}, 1004, "policies[0].permission_groups"),
        ({"name": "x", "policies": [{**POLICY[0], "resources": {}}]}, 1004, "policies[0].resources"),
    ],
)
def test_create_token_refuses_bad_bodies_and_creates_nothing(
    cf: CloudflareBackend, body: Any, code: int, needle: str
) -> None:
    admin = cf.authenticate(ADMIN)
    with pytest.raises(CloudflareError) as e:
        cf.create_token(admin, body)
    assert (e.value.status, e.value.code) == (400, code) and needle in e.value.message
    assert len(cf.list_tokens(admin, 1, 20).items) == 2


@pytest.mark.parametrize(("header", "code"), [(None, 6003), ("", 6003), ("Basic abc", 6111), ("Bearer  ", 6111)])
def test_authorization_header_parsing(header: str | None, code: int) -> None:
    with refused(code):
        bearer_value(header)
    assert bearer_value("bearer  abc ") == "abc"


# -- origins (twin control) ----------------------------------------------------------------------------
def test_origin_health(cf: CloudflareBackend) -> None:
    assert cf.set_origin_health(ORIGIN, {"healthy": False})["healthy"] is False
    assert cf.world.origin(ORIGIN)["healthy"] is False  # type: ignore[index]
    assert cf.set_origin_health(ORIGIN, {})["healthy"] is True  # type: ignore[index]
    with refused(404, 404):
        cf.set_origin_health("nowhere.example", {})


# -- envelopes -----------------------------------------------------------------------------------------
def test_envelopes() -> None:
    assert error_body(CloudflareError(404, 81044, "Record does not exist.")) == {
        "success": False,
        "errors": [{"code": 81044, "message": "Record does not exist."}],
        "messages": [],
        "result": None,
    }
    assert ok({"id": "x"}) == {"success": True, "errors": [], "messages": [], "result": {"id": "x"}}
    body = paged(paginate([{"i": i} for i in range(7)], 2, 5))
    assert body["success"] and body["result"] == [{"i": 5}, {"i": 6}]
    assert body["result_info"] == {"page": 2, "per_page": 5, "count": 2, "total_count": 7, "total_pages": 2}
