"""``cellgate demo``'s additions to the gateway: outage drills on the embedded cells, the
console's routes that run them, and a page cache that does not outlive a drill.

:func:`gateway.app.create_app` adds them only with ``demo=True``: ``cellgate serve`` holds
no drill state and its listing consults none. Nothing on the read path imports this
package (``tests/unit/test_layers.py`` checks).

=============  ==============================================================
``drills``     down, hang or slow at the driver (SQLAlchemy's cursor event)
``pagecache``  the store wrapper whose page keys carry the drill generation
``lifespan``   drills on every cell at start-up, the store wrapped
``routes``     ``GET /console/drills``, ``PUT /console/drills/{cell}``
=============  ==============================================================
"""

from gateway.demo.drills import DRILLS, Drill, Drills
from gateway.demo.lifespan import start_drills
from gateway.demo.pagecache import DrilledStore
from gateway.demo.routes import router

__all__ = ["DRILLS", "Drill", "DrilledStore", "Drills", "router", "start_drills"]
