"""The request specs the detail and show views read (from 2.96), loaded as Nova loads them.

Nova's ``RequestSpec._from_db_object`` reloads a spec's server group by uuid with the
caller's own context whenever it loads the spec. For a caller who is not an admin that
query is scoped to the caller's project (``_instance_group_get_query``), so a group it does
not find — deleted, or another project's, which a non-admin granted ``get_all_tenants``
lists — drops the ``group`` scheduler hint (2.100). Here: one API database read per page
for the page's grouped specs, from 2.100 (before, the hints are not shown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cells import Row
from cells.novajson import RequestSpecInfo, decode_request_spec
from cells.stubs import StubRow
from gateway.auth import Principal
from gateway.params import Version
from gateway.state import AppState

__all__ = ["group_scope", "page_specs", "server_spec", "with_groups_found"]

HINTS_SINCE = (2, 100)


def group_scope(caller: Principal) -> str | None:
    """The project a server group must belong to for ``caller`` to find it (``None``: any,
    for an admin), as Nova's group queries scope a context that is not an admin."""
    return None if caller.is_admin else caller.project_id


def with_groups_found(
    specs: Mapping[str, RequestSpecInfo], found: frozenset[str]
) -> dict[str, RequestSpecInfo]:
    """``specs`` as Nova shows them when only the groups ``found`` were found."""
    return {
        uuid: spec.without_group_hint() if spec.grouped and spec.group_uuid not in found else spec
        for uuid, spec in specs.items()
    }


async def _groups_found(
    state: AppState, specs: Mapping[str, RequestSpecInfo], caller: Principal
) -> frozenset[str]:
    wanted = sorted({s.group_uuid for s in specs.values() if s.grouped and s.group_uuid})
    if not wanted:
        return frozenset()
    return await state.api.server_groups(wanted, group_scope(caller))


async def page_specs(
    state: AppState, rows: Sequence[Row], version: Version, caller: Principal
) -> dict[str, RequestSpecInfo]:
    """The request specs of the page's servers (not stubs), from 2.96: one read, and one
    more for their server groups from 2.100."""
    if version < (2, 96):
        return {}
    uuids = [str(row["uuid"]) for row in rows if not isinstance(row, StubRow)]
    documents = await state.api.request_specs(uuids) if uuids else {}
    decoded = {uuid: decode_request_spec(text) for uuid, text in documents.items()}
    specs = {uuid: spec for uuid, spec in decoded.items() if spec is not None}
    if version < HINTS_SINCE:
        return specs
    return with_groups_found(specs, await _groups_found(state, specs, caller))


async def server_spec(
    state: AppState, uuid: str, version: Version, caller: Principal
) -> RequestSpecInfo | None:
    """One server's request spec for show, from 2.96 (``None``: none, or before 2.96)."""
    if version < (2, 96):
        return None
    spec = decode_request_spec(await state.api.request_spec(uuid))
    if spec is None or version < HINTS_SINCE:
        return spec
    return with_groups_found({uuid: spec}, await _groups_found(state, {uuid: spec}, caller))[uuid]
