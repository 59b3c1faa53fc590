"""The console's drill routes (``cellgate demo`` only): list the drills, start or end one.

The console's page (:mod:`gateway.console`) shows a cell's drill buttons when these
answer; ``cellgate serve`` never installs them, so there they are a 404.
"""

from __future__ import annotations

from typing import Annotated, cast

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.console import console_json
from gateway.demo.drills import DRILLS, Drill, Drills
from gateway.deps import Caller
from gateway.errors import BadRequest, Forbidden, NotFound

__all__ = ["router"]


async def _drills(request: Request) -> Drills:
    drills: Drills = request.app.state.drills  # set by create_app's lifespan in the demo
    return drills


DemoDrills = Annotated[Drills, Depends(_drills)]

router = APIRouter(include_in_schema=False)


@router.get("/console/drills")
async def list_drills(drills: DemoDrills, caller: Caller) -> Response:
    return console_json(
        {
            "drills": {label: drills.get(label) for label in drills.labels()},
            "choices": list(DRILLS),
            "slow_s": drills.slow_s,
        }
    )


@router.put("/console/drills/{cell}")
async def set_drill(cell: str, request: Request, drills: DemoDrills, caller: Caller) -> Response:
    """Start a drill on one of the demo's cells: body ``{"drill": "down"}`` (``"none"``
    restores the cell). Administrators only."""
    if not caller.is_admin:
        raise Forbidden("Only an administrator can run outage drills.")
    if cell not in drills.labels():
        raise NotFound(f"No cell {cell!r} to drill; cells: {', '.join(drills.labels())}.")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest('The body must be JSON: {"drill": "down"}.') from None
    drill = body.get("drill") if isinstance(body, dict) else None
    if drill not in DRILLS:
        raise BadRequest(f"'drill' must be one of {', '.join(DRILLS)}.")
    drills.set(cell, cast(Drill, drill))
    return console_json({"cell": cell, "drill": drill})
