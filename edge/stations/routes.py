"""Where each conveyor item actually went, written into its record (edge.store.Store.add_route).

The tracker routes an item (ItemRouted) when its front edge reaches the gate; its record is
committed when the inspection ends. Either may come first: a route that arrives before its record
is held until the record is committed, then written, so the record always ends up with it.
`committed` and `routed` return the write to run (the flow runs it as a task of its TaskGroup, so a
failed write is not lost).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from datetime import datetime, timezone

import structlog

from central_sync.schema import RouteTaken
from edge.errors import DiskFull
from edge.store import StoreWriter
from edge.tracking import ItemRouted

log = structlog.get_logger()


class RouteRecorder:
    """Tracker item ids to record ids; writes each item's route once both are known."""

    def __init__(self, store: StoreWriter, after_write: Callable[[], None] | None = None) -> None:
        self.store, self.after_write = store, after_write
        self._records: dict[int, str] = {}  # tracker item id -> record id
        self._committed: set[int] = set()
        self._pending: dict[int, RouteTaken] = {}

    def entered(self, item_id: int, record_id: str) -> None:
        self._records[item_id] = record_id

    def records_of(self, item_ids: list[int]) -> list[str]:
        """The record ids of these tracker items, in order (items the tracker made up have none)."""
        return [self._records[i] for i in item_ids if i in self._records]

    def committed(self, item_id: int) -> Coroutine[Any, Any, None] | None:
        """The item's record is in the store: the write of a route that arrived before it, if any."""
        self._committed.add(item_id)
        route = self._pending.pop(item_id, None)
        return self._write(item_id, route) if route is not None else None

    def routed(self, out: ItemRouted) -> Coroutine[Any, Any, None] | None:
        """The write of the route, once the item's record is committed (else it waits for `committed`)."""
        route = RouteTaken(to=out.route, reason=out.reason, at=datetime.now(timezone.utc))
        if out.item_id not in self._records:  # an item the tracker made up (never passed the entry eye)
            log.warning("conveyor.route_without_record", item=out.item_id, route=out.route, reason=out.reason)
            return None
        if out.item_id in self._committed:
            return self._write(out.item_id, route)
        self._pending[out.item_id] = route
        return None

    def _write(self, item_id: int, route: RouteTaken) -> Coroutine[Any, Any, None]:
        self._committed.discard(item_id)
        return self._store(self._records.pop(item_id), route)

    async def _store(self, record_id: str, route: RouteTaken) -> None:
        try:
            await self.store.call(self.store.store.add_route, record_id, route)
        except DiskFull as exc:  # the store's disk_full alarm stands; the belt goes on
            log.error("conveyor.route_not_written", record=record_id, route=route.to, error=str(exc))
            return
        if self.after_write is not None:
            self.after_write()
