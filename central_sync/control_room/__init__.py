"""The control room: stations board, live alerts, KPIs, roles and audit, signed commands.

    async with ControlRoom(store, broker_cfg, ControlRoomConfig(...)) as room:
        app = room.install(create_app(store, hub.stats))
"""

from central_sync.control_room.config import ControlRoomConfig
from central_sync.control_room.service import ControlRoom

__all__ = ["ControlRoom", "ControlRoomConfig"]
