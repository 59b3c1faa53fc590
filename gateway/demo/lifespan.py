"""What ``cellgate demo`` adds to the gateway's state at start-up: outage drills."""

from __future__ import annotations

from gateway.demo.drills import Drills
from gateway.demo.pagecache import DrilledStore
from gateway.state import AppState

__all__ = ["start_drills"]


def start_drills(state: AppState) -> Drills:
    """Drills on every cell of ``state``, and its store wrapped so that no page cached
    before a drill is served after it; a slow cell answers in half its deadline (at most
    1 s)."""
    drills = Drills(slow_s=min(1.0, state.settings.cell_timeout_s / 2))
    for client in state.clients.values():
        drills.install(client.cell.label, client.engine)
    state.store = DrilledStore(state.store, drills, state.settings.redis_prefix)
    return drills
