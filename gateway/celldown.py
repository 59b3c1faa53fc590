"""When Nova answers a listing with stubs for its down cells: the request that
``list_records_by_skipping_down_cells = false`` does not fail.

Nova (``servers.py``, ``_is_cell_down_supported``) builds stubs — and then ignores the
option, never failing — only from microversion 2.69, for a request with none of
``sort_key``, ``sort_dir``, ``limit`` and ``marker``, whose search options, once those a
caller may not use are removed (``remove_invalid_options``: a caller without
``allow_all_filters`` keeps only the user filters of its microversion), are none or only
``all_tenants``. Every other listing fails (500) when a cell is down and the option is
false. cellgate answers stubs more widely (paged and in order); with the option false it
keeps Nova's line: a 200 with stubs exactly where Nova gives one, else 503.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.params import PAGING_PARAMS, USER_FILTERS, Version

__all__ = ["STUBS_SINCE", "nova_shows_stubs"]

STUBS_SINCE = (2, 69)


def nova_shows_stubs(
    params: Iterable[tuple[str, str]], version: Version, all_filters: bool
) -> bool:
    """Whether Nova answers this listing with stubs for its down cells (see above)."""
    if version < STUBS_SINCE:
        return False
    keys = {name for name, _ in params}
    if keys & PAGING_PARAMS:
        return False
    if not all_filters:
        allowed = set().union(*(names for since, names in USER_FILTERS if since <= version))
        keys &= allowed
    return keys <= {"all_tenants"}
