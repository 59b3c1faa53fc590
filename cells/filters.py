"""Instance filters as plain data, and their translation to SQL.

:class:`InstanceFilters` is what the gateway parses a query string into (after Nova's
renames: ``name`` → a ``display_name`` regex, ``image`` → ``image_ref``, ``flavor`` →
``instance_type_id`` and so on). It is frozen and hashable so it can be part of a cache
fingerprint. :func:`where_clauses` is the only place that knows how each field is spelled
in SQL.

Regular expressions (``name`` and the other non-exact filters) are matched as Nova matches
them on each backend (``nova/db/main/api.py``, ``_regex_instance_filter``): ``~`` on
PostgreSQL (case-sensitive), ``REGEXP`` on SQLite (Python's ``re``) and on MariaDB/MySQL.
There ``REGEXP`` follows the column's collation, so on Nova's ``utf8_general_ci`` tables it
is **case-insensitive** (``name=WEB`` matches "web-1"), yet accent- and space-exact
(``é`` does not match "e", ``web$`` does not match "web "); and Nova escapes every ``|``
first (``_safe_regex_mysql``: old MySQL rejected an empty alternative), so ``a|b`` matches
the text "a|b", not "a" or "b". cellgate does the same, per cell: in a deployment mixing
backends each cell matches as Nova would on it (Nova picks the operator once, from the API
node's ``[database] connection``).

Tags live in Nova's ``tags`` table (``resource_id`` = the instance uuid), read through
``EXISTS`` subqueries as Nova does: ``tags`` needs all, ``tags-any`` at least one,
``not-tags`` excludes instances having all, ``not-tags-any`` those having any.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, Table, and_, bindparam, exists, not_, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from cells.ipmatch import IpMatch
from cells.schema import instances, tags
from cells.sqltypes import exactly, text_of

__all__ = ["SOFT_DELETED", "InstanceFilters", "nova_mysql_regex", "where_clauses"]

SOFT_DELETED = "soft-delete"


@dataclass(frozen=True, slots=True)
class InstanceFilters:
    """Everything a listing may filter on. ``None`` (or empty) means "no filter"."""

    project_id: str | None = None
    user_id: str | None = None
    image_ref: str | None = None
    host: str | None = None
    locked: bool | None = None
    vm_states: frozenset[str] | None = None
    task_states: frozenset[str | None] | None = None
    power_states: frozenset[int] | None = None
    instance_type_ids: frozenset[int] | None = None
    uuids: frozenset[str] | None = None
    # (column, pattern): unanchored regular expressions, as Nova treats non-exact filters
    # (``name`` → ``display_name``, ``hostname``, ``key_name``, ``availability_zone``...).
    regex: tuple[tuple[str, str], ...] = ()
    # Nova's ``ip``/``ip6``: regexes matched against the info cache's fixed IPs
    # (:mod:`cells.ipmatch`); either may match.
    ip: str | None = None
    ip6: str | None = None
    tags: frozenset[str] = frozenset()
    tags_any: frozenset[str] = frozenset()
    not_tags: frozenset[str] = frozenset()
    not_tags_any: frozenset[str] = frozenset()
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    # None: no deleted filter at all (Nova's behaviour with changes-since/-before).
    deleted: bool | None = False
    # With deleted=False, also show vm_state "soft-delete" rows (status=SOFT_DELETED asks so).
    include_soft_deleted: bool = False
    # Nova's admin-only soft_deleted filter (None: not given): with deleted=True, False
    # leaves vm_state "soft-delete" rows out; with deleted=False, True lets them in.
    soft_deleted: bool | None = None

    @property
    def matches_nothing(self) -> bool:
        """True when an empty ``IN`` list makes the result empty without asking any cell."""
        return any(
            values is not None and not values
            for values in (
                self.vm_states,
                self.task_states,
                self.power_states,
                self.instance_type_ids,
                self.uuids,
            )
        )


class _NovaPattern(TypeDecorator[str]):
    """A regular expression bound as Nova binds it on each backend: on MySQL with every
    ``|`` escaped (:func:`nova_mysql_regex`), elsewhere as given."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Escape ``|`` for MySQL-family servers."""
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return nova_mysql_regex(value)
        return value


def nova_mysql_regex(pattern: str) -> str:
    """``pattern`` as Nova sends it to MySQL: every ``|`` escaped (``_safe_regex_mysql``)."""
    return pattern.replace("|", "\\|")


def _matches(column: ColumnElement[object], pattern: str) -> ColumnElement[bool]:
    return text_of(column).regexp_match(bindparam(None, pattern, type_=_NovaPattern()))


def _has_tag(table: Table, tag: str) -> ColumnElement[bool]:
    return exists(select(tags.c.tag).where(tags.c.resource_id == table.c.uuid, tags.c.tag == tag))


def where_clauses(filters: InstanceFilters, table: Table = instances) -> list[ColumnElement[bool]]:
    """The SQL conditions for ``filters`` (to be ANDed)."""
    c = table.c
    out: list[ColumnElement[bool]] = []
    if filters.project_id is not None:  # the caller's scope: exact on every backend
        out.append(exactly(c.project_id, filters.project_id))
    for column, value in (
        (c.user_id, filters.user_id),
        (c.image_ref, filters.image_ref),
        (c.host, filters.host),
        (c.locked, filters.locked),
    ):
        if value is not None:
            out.append(column == value)
    for column, values in (
        (c.vm_state, filters.vm_states),
        (c.power_state, filters.power_states),
        (c.instance_type_id, filters.instance_type_ids),
        (c.uuid, filters.uuids),
    ):
        if values is not None:
            out.append(column.in_(sorted(values)))
    if filters.task_states is not None:
        named = sorted(state for state in filters.task_states if state is not None)
        if None in filters.task_states:
            out.append(or_(c.task_state.in_(named), c.task_state.is_(None)))
        else:
            out.append(c.task_state.in_(named))
    out.extend(_matches(c[column], pattern) for column, pattern in filters.regex)
    if filters.ip is not None or filters.ip6 is not None:
        out.append(IpMatch(c.uuid, filters.ip, filters.ip6))
    if filters.changes_since is not None:
        out.append(c.updated_at >= filters.changes_since)
    if filters.changes_before is not None:
        out.append(c.updated_at <= filters.changes_before)
    if filters.deleted is True:
        if filters.soft_deleted is False:
            out.append(c.deleted != 0)
        else:
            out.append(or_(c.deleted != 0, c.vm_state == SOFT_DELETED))
    elif filters.deleted is False:
        out.append(c.deleted == 0)
        if not (filters.include_soft_deleted or filters.soft_deleted):
            out.append(or_(c.vm_state != SOFT_DELETED, c.vm_state.is_(None)))
    out.extend(_has_tag(table, tag) for tag in sorted(filters.tags))
    if filters.tags_any:
        out.append(or_(*(_has_tag(table, tag) for tag in sorted(filters.tags_any))))
    if filters.not_tags:
        out.append(not_(and_(*(_has_tag(table, tag) for tag in sorted(filters.not_tags)))))
    out.extend(not_(_has_tag(table, tag)) for tag in sorted(filters.not_tags_any))
    return out
