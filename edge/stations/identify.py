"""Identities read during an inspection: tags seen while the item is open become part of its record.

A reader configured under the name `badge` is the officer's sign-in reader: its tags go to the
station screen (event "badge"), never into inspection records. A tag read while an item is open,
or still in a reader's field when an item opens, joins the item's identities. A 125 kHz tag
becomes an `rfid` identity; a UHF tag read over LLRP becomes `rfid_tid` (its factory TID) and
`rfid_epc`. UHF tags are bound by TID (drivers.rfid.llrp.binding): a TID whose EPC changed or
that is present at two readers at once is logged, published on the screen (event "rfid_flag") and
flagged on the identity (`conflict`). An e-seal in range of a seal reader (drivers.seal) while an
item is open becomes a `seal` identity with its state; every seal report heard meanwhile (in range,
opened, tampered) is one of the item's `seal_events`, so a seal tampered in the lane stays on record
even if it reads intact again. edge.identity fuses the reads when the record is written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from central_sync.schema import Identity, SealEventOut, SealStatus
from drivers.errors import DriverError
from drivers.rfid.llrp.binding import BindingFlag, TidBinder
from drivers.seal import SealGone, SealReport, SealSeen
from edge.devices import Devices
from edge.events import EventBus
from edge.inspection import Item

log = structlog.get_logger()

BADGE_READER = "badge"


@dataclass
class TagWindow:
    devices: Devices
    events: EventBus
    binder: TidBinder = field(default_factory=TidBinder)
    _open: dict[str, Item] = field(default_factory=dict)
    _present: dict[tuple[str, str], list[Identity]] = field(default_factory=dict)
    """Identities of the tags (and seals) in a reader's field now, by (reader, tag): they belong to an item opened
    meanwhile."""

    def start(self, item: Item) -> None:
        self._open[item.id] = item
        for identities in self._present.values():
            _add(item, identities)
            item.seal_events += [_seal_event(i, i.seal) for i in identities if i.seal is not None]

    def stop(self, item: Item) -> None:
        self._open.pop(item.id, None)

    async def run(self) -> None:
        if not self.devices.readers and not self.devices.seals:
            return
        async with asyncio.TaskGroup() as tasks:
            for name, reader in self.devices.readers.items():
                tasks.create_task(self._follow(name, reader), name=f"reader:{name}")
            for name, seals in self.devices.seals.items():
                tasks.create_task(self._follow_seals(name, seals), name=f"seal:{name}")

    async def _follow_seals(self, name: str, seals: Any) -> None:
        async for event in seals.events():
            if isinstance(event, SealSeen):
                self._seal_seen(name, event.report)
            elif isinstance(event, SealGone):
                self._present.pop((f"seal:{name}", event.seal_id), None)

    def _seal_seen(self, reader_name: str, report: SealReport) -> None:
        """A seal in range, or its new state: an identity of every open item, and one of its seal events."""
        status = SealStatus(state=report.state, battery_low=report.battery_low, battery_pct=report.battery_pct,
                            last_event_at=report.last_event_at, events=report.events)
        identity = Identity(kind="seal", value=report.seal_id, source=reader_name, read_at=datetime.now(UTC),
                            seal=status)
        self._present[(f"seal:{reader_name}", report.seal_id)] = [identity]
        event = _seal_event(identity, status)
        for item in self._open.values():
            item.identities.append(identity)
            item.seal_events.append(event)
            item.identified()
        self.events.publish("seal", {"seal": report.seal_id, "state": report.state, "reader": reader_name,
                                     "battery_low": report.battery_low})

    async def _follow(self, name: str, reader: Any) -> None:
        try:
            async for event in reader.events():
                kind = type(event).__name__
                if kind == "TagSeen":
                    self._seen(name, event)
                elif kind == "TagRemoved":
                    self._removed(name, event)
        except DriverError as exc:
            self.devices.mark(f"reader:{name}", "lost", str(exc))
            raise

    def _seen(self, reader_name: str, event: Any) -> None:
        tag = event.tag.hex
        if reader_name == BADGE_READER:
            self.events.publish("badge", {"badge": tag, "reader": reader_name})
            return
        identities = self._identities(reader_name, event)
        self._present[(reader_name, tag)] = identities
        for item in self._open.values():
            _add(item, identities)
        log.info("reader.tag_seen", reader=reader_name, tag=tag, open_items=len(self._open))

    def _removed(self, reader_name: str, event: Any) -> None:
        self._present.pop((reader_name, event.tag.hex), None)
        if event.tag.tech == "uhf-tid":
            self.binder.gone(event.tag.hex, reader_name)

    def _identities(self, reader_name: str, event: Any) -> list[Identity]:
        """The identities a tag read gives: rfid for 125 kHz; rfid_tid and rfid_epc for UHF (bound by TID)."""
        tech, tag, epc = event.tag.tech, event.tag.hex, getattr(event, "epc", None)
        if tech == "uhf-tid":
            flags = self._bind(tag, epc or "", reader_name)
            return [Identity(kind="rfid_tid", value=tag, source=reader_name, conflict=_detail(flags, "two_lanes"))] + \
                ([Identity(kind="rfid_epc", value=epc, source=reader_name, checks={"tid": tag},
                           conflict=_detail(flags, "epc_changed"))] if epc else [])
        if tech == "uhf-epc":
            return [Identity(kind="rfid_epc", value=tag, source=reader_name)]
        return [Identity(kind="rfid", value=tag, source=reader_name)]

    def _bind(self, tid: str, epc: str, reader_name: str) -> list[BindingFlag]:
        flags = self.binder.seen(tid, epc, reader_name)
        for flag in flags:
            log.warning("rfid.binding_flag", reader=reader_name, flag=flag.kind, detail=flag.detail)
            self.events.publish("rfid_flag", {"flag": flag.kind, "tid": flag.tid, "detail": flag.detail,
                                              "reader": reader_name})
        return flags


def _seal_event(seal: Identity, status: SealStatus) -> SealEventOut:
    """A seal identity's report as one of the item's seal events (a seal in range when the item opened, or a change)."""
    return SealEventOut(seal_id=seal.value, state=status.state, at=seal.read_at or datetime.now(UTC),
                        reader=seal.source, events=status.events)


def _detail(flags: list[BindingFlag], kind: str) -> str | None:
    """The sentence of the binding flag of this kind, as the identity's conflict."""
    return next((f.detail for f in flags if f.kind == kind), None)


def _add(item: Item, identities: list[Identity]) -> None:
    """Add the identities the item does not have yet."""
    added = False
    for identity in identities:
        if all((i.kind, i.value) != (identity.kind, identity.value) for i in item.identities):
            item.identities.append(identity)
            added = True
    if added:
        item.identified()
