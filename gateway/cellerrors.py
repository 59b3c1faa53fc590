"""What the cells' errors mean over HTTP: one translation, shared by listing and show.

=======================  ==========================================================
:mod:`cells` raises      the client gets
=======================  ==========================================================
MarkerNotFound           400 ``marker [X] not found``
InvalidQuery             400 ``Invalid filter value: ...``
MarkerUnavailable        503 naming the marker's cell, with ``Retry-After``
ApiDatabaseUnavailable   503 ``The API database is not responding.``
CellMisconfigured        500 ``computeFault`` (details only in the log, and a metric);
                         only where no cell client stood between (a cell client turns
                         it into an unavailable cell)
the request's budget     503 ``The <what> did not complete within N s.``
=======================  ==========================================================

A cell that is down, hung or slow is an outcome, not an error: what a page or a show makes
of it is :mod:`gateway.listing`'s and :mod:`gateway.show`'s business.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cells import (
    ApiDatabaseUnavailable,
    Cell,
    CellMisconfigured,
    CellsError,
    InvalidQuery,
    MarkerNotFound,
    MarkerUnavailable,
)
from gateway.errors import BadRequest, CellConfigurationError, GatewayError, ServiceUnavailable
from gateway.state import AppState

__all__ = ["cells_unavailable", "http_error"]

log = logging.getLogger(__name__)


def http_error(exc: CellsError | TimeoutError, state: AppState, what: str) -> GatewayError:
    """The client-visible error for ``exc``, raised while serving a ``what`` ("listing",
    "request") within ``request_budget_s``; logs and counts what the operator must see."""
    retry = state.settings.retry_after_s
    match exc:
        case MarkerNotFound(marker=marker):
            return BadRequest(f"marker [{marker}] not found")
        case MarkerUnavailable(cell=cell):
            return cells_unavailable([cell], state)
        case InvalidQuery():
            return BadRequest(f"Invalid filter value: {exc}")
        case CellMisconfigured(cell=cell, message=message, reason=reason):
            log.error("configuration error in cell %s: %s", cell, message)
            state.metrics.config_errors.labels(cell, reason).inc()
            return CellConfigurationError()
        case ApiDatabaseUnavailable():
            log.warning("API database failed (%s): %s", what, exc)
            return ServiceUnavailable("The API database is not responding.", retry)
        case TimeoutError():
            budget = state.settings.request_budget_s
            return ServiceUnavailable(f"The {what} did not complete within {budget:g} s.", retry)
    log.error("unexpected cells error: %r", exc)
    return GatewayError("Unexpected API Error. The gateway's operators have the details.")


def cells_unavailable(cells: Sequence[Cell | str], state: AppState) -> ServiceUnavailable:
    """503: a listing would be incomplete without ``cells`` (or their labels)."""
    names = ", ".join(c if isinstance(c, str) else c.label for c in cells)
    return ServiceUnavailable(
        f"Cell(s) {names} not responding; the listing would be incomplete.",
        state.settings.retry_after_s,
    )
