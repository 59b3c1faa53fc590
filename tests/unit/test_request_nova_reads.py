"""gateway.request reads the query as nova-api 34 does: one value of each exact filter (the
last), ``status`` as a list that replaces ``vm_state``/``task_state``, ``created_at`` as a
regular expression, and Nova's schema check of every ``format: regex`` value first."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from cells.filters import InstanceFilters, where_clauses
from cells.order import Direction, SortSpec
from cells.stubs import stubs_possible
from gateway.auth import Principal
from gateway.errors import BadRequest, Forbidden
from gateway.params import REGEX_PARAMS_SINCE
from gateway.request import ListRequest, parse_list_request
from tests.support.callers import ADMIN, USER, grants

LATEST = (2, 104)
A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def parse(
    items: list[tuple[str, str]], principal: Principal = ADMIN, version: tuple[int, int] = LATEST
) -> ListRequest:
    return parse_list_request(items, principal, grants(principal), version, max_limit=1000)


def rejected(
    items: list[tuple[str, str]], principal: Principal = ADMIN, version: tuple[int, int] = LATEST
) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(items, principal, version)
    return caught.value.message


# --- repeated exact filters: the last value, as Nova's search_opts.update(req.GET) -------


def test_repeated_uuid_filters_by_the_last_only() -> None:
    assert parse([("uuid", A), ("uuid", B)]).filters.uuids == frozenset({B})
    assert parse([("uuid", B), ("uuid", A)]).filters.uuids == frozenset({A})
    assert parse([]).filters.uuids is None


@pytest.mark.parametrize(
    ("name", "field", "first", "last"),
    [
        ("vm_state", "vm_states", "active", "error"),
        ("task_state", "task_states", "rebooting", "deleting"),
    ],
)
def test_repeated_state_filters_by_the_last_only(
    name: str, field: str, first: str, last: str
) -> None:
    for who in (ADMIN, USER):  # a member may use them from 2.83
        filters = parse([(name, first), (name, last)], who).filters
        assert getattr(filters, field) == frozenset({last})


def test_repeated_power_state_validates_every_value_and_filters_by_the_last() -> None:
    assert parse([("power_state", "1"), ("power_state", "4")]).filters.power_states == {4}
    assert "power_state" in rejected([("power_state", "x"), ("power_state", "4")])
    assert "power_state" in rejected([("power_state", str(2**31)), ("power_state", "4")])


def test_status_counts_every_value() -> None:
    filters = parse([("status", "ACTIVE"), ("status", "ERROR")]).filters
    assert filters.vm_states == frozenset({"active", "error"})
    assert filters.task_states is None  # a vm_state's default status: no task filter


def test_status_replaces_vm_state() -> None:
    """Nova sets search_opts['vm_state'] from the status: a vm_state beside it is gone."""
    filters = parse([("vm_state", "error"), ("status", "ACTIVE")]).filters
    assert filters.vm_states == frozenset({"active"})
    filters = parse([("status", "SHUTOFF"), ("vm_state", "active")]).filters
    assert filters.vm_states == frozenset({"stopped"})


def test_a_task_status_replaces_task_state_a_default_one_keeps_it() -> None:
    reboot = parse([("task_state", "deleting"), ("status", "REBOOT")]).filters
    assert reboot.vm_states == frozenset({"active"})
    assert reboot.task_states is not None
    assert "deleting" not in reboot.task_states
    assert "rebooting" in reboot.task_states
    # ACTIVE is active's default status: Nova leaves task_state as given (its last value).
    active = parse([("task_state", "x"), ("task_state", "deleting"), ("status", "ACTIVE")])
    assert active.filters.task_states == frozenset({"deleting"})


def test_only_a_deleted_status_lists_deleted_servers() -> None:
    assert parse([("status", "DELETED")]).filters.deleted is True
    with pytest.raises(Forbidden):
        parse([("status", "DELETED")], USER)
    # vm_state=deleted is a string to Nova, never equal to its ['deleted']: no 403 for a
    # member, and the listing stays of live servers (none of which is in vm_state deleted).
    for who in (ADMIN, USER):
        filters = parse([("vm_state", "deleted")], who).filters
        assert (filters.deleted, filters.vm_states) == (False, frozenset({"deleted"}))


# --- created_at: Nova's regular expression on the column's MySQL text ------------------


def test_created_at_is_a_regex_filter_on_created_at() -> None:
    filters = parse([("created_at", "x"), ("created_at", "^2024-0[1-6]")]).filters
    assert filters.regex == (("created_at", "^2024-0[1-6]"),)


@pytest.mark.parametrize(
    ("version", "kept"), [((2, 1), False), ((2, 82), False), ((2, 83), True), (LATEST, True)]
)
def test_a_member_filters_by_created_at_from_2_83(version: tuple[int, int], kept: bool) -> None:
    filters = parse([("created_at", "^2024")], USER, version).filters
    assert filters.regex == ((("created_at", "^2024"),) if kept else ())
    assert parse([("created_at", "^2024")], ADMIN, version).filters.regex


@pytest.mark.parametrize(
    ("dialect", "expression"),
    [
        (postgresql.dialect(), "to_char(instances.created_at, 'YYYY-MM-DD HH24:MI:SS') ~"),
        (mysql.dialect(), "CAST(instances.created_at AS CHAR) REGEXP"),
        (sqlite.dialect(), "substr(instances.created_at, 1, 19) REGEXP"),
    ],
    ids=["postgresql", "mysql", "sqlite"],
)
def test_created_at_matches_the_text_mysql_gives_the_column(
    dialect: object, expression: str
) -> None:
    (clause,) = where_clauses(InstanceFilters(deleted=None, regex=(("created_at", "^2024"),)))
    assert expression in str(clause.compile(dialect=dialect))  # type: ignore[arg-type]  # the parametrized dialect is a Dialect instance


def test_a_created_at_filter_rules_out_stubs_as_any_filter() -> None:
    spec = SortSpec.build([("created_at", Direction.DESC)])
    assert stubs_possible(spec, InstanceFilters(project_id="demo"))
    assert not stubs_possible(
        spec, InstanceFilters(project_id="demo", regex=(("created_at", "^2024"),))
    )


# --- Nova's schema check of format: regex, before the policy drops anything ------------


@pytest.mark.parametrize("value", ["", "(", "[a-", "*"])
@pytest.mark.parametrize("who", [ADMIN, USER], ids=["admin", "member"])
def test_an_empty_or_invalid_regex_is_a_400_even_where_the_filter_is_dropped(
    value: str, who: Principal
) -> None:
    # At 2.1 a member may not filter by created_at, hostname or node: Nova still validates
    # the query schema first.
    for name in ("created_at", "hostname", "node", "name", "flavor", "power_state"):
        message = rejected([(name, value)], who, (2, 1))
        assert name in message
        assert "regex" in message


def test_every_value_of_a_regex_parameter_is_checked() -> None:
    assert "created_at" in rejected([("created_at", "("), ("created_at", "^2024")])
    assert "created_at" in rejected([("created_at", "^2024"), ("created_at", "")])


def test_tags_are_checked_as_regexes_from_2_26() -> None:
    assert "tags" in rejected([("tags", "")], USER, (2, 26))
    assert "not-tags-any" in rejected([("not-tags-any", "a,(")], USER, (2, 26))
    # Before 2.26 tags are not in Nova's schema: not checked (and stripped by the route).
    parse([("tags", "")], USER, (2, 25))


def test_regex_params_are_nova_schema_names() -> None:
    (_, first), (_, tags) = REGEX_PARAMS_SINCE
    assert {"created_at", "name", "flavor", "power_state", "ip", "ip6"} <= first
    assert "launch_index" not in first  # common_query_param in Nova's schema
    assert tags == {"tags", "tags-any", "not-tags", "not-tags-any"}


# --- aliases of one filter: the one that first appears last, as Nova's filters dict ------


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        ([("name", "a"), ("display_name", "b")], "b"),
        ([("display_name", "b"), ("name", "a")], "a"),
        ([("name", "a"), ("display_name", "b"), ("name", "c")], "b"),  # first appearances
        ([("display_name", "b"), ("name", "a"), ("display_name", "d")], "a"),
    ],
)
def test_name_and_display_name_set_one_regex(items: list[tuple[str, str]], pattern: str) -> None:
    assert parse(items).filters.regex == (("display_name", pattern),)


def test_a_member_has_name_only() -> None:
    # display_name is not a member's filter: dropped first, so name stands.
    filters = parse([("name", "a"), ("display_name", "b")], USER, (2, 1)).filters
    assert filters.regex == (("display_name", "a"),)


def test_display_description_wins_over_description() -> None:
    for items in (
        [("description", "a"), ("display_description", "b")],
        [("display_description", "b"), ("description", "a")],
    ):
        assert parse(items).filters.regex == (("display_description", "b"),)
    assert parse([("description", "a")]).filters.regex == (("display_description", "a"),)


def test_image_and_image_ref_set_one_filter() -> None:
    assert parse([("image", "i1"), ("image_ref", "i2")]).filters.image_ref == "i2"
    assert parse([("image_ref", "i2"), ("image", "i1"), ("image_ref", "i3")]).filters.image_ref == (
        "i1"
    )


def test_tenant_id_and_project_id_set_one_scope() -> None:
    both = [("all_tenants", "1"), ("tenant_id", "p1"), ("project_id", "p2")]
    assert parse(both).filters.project_id == "p2"
    assert parse([both[0], both[2], both[1]]).filters.project_id == "p1"
    # Nova filters by the value given, an empty one too (no project is called "").
    assert parse([("all_tenants", "1"), ("project_id", "")]).filters.project_id == ""
    assert parse([("tenant_id", "p1")]).filters.project_id == "admin"  # no all_tenants
