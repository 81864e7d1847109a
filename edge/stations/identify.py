"""Identities read during an inspection: tags seen while the item is open become part of its record.

A reader configured under the name `badge` is the officer's sign-in reader: its tags go to the
station screen (event "badge"), never into inspection records. A tag read while items are open joins
the one that entered last (the readers' antennas are at the entry: on a belt with several bags in
the tunnel, the tag that appears is the bag's just come in), and a tag still in a reader's field when
an item opens joins that item unless the item it joined holds it: a tag is one item's while it stays in the
field, also once that item's record is written, so the vehicle ahead, still under the antenna, keeps its tag when
a car enters behind it (queued close, running the red light, or waiting at the barrier after its verdict). A tag
that left the field after its item's record was written (or whose item's record was written after it left) is
remembered as that item's for `tag_hold_s` (`[tags] hold_s`): read again meanwhile during another item (the vehicle
ahead still at the barrier or just past the exit, back in the antenna's field; or the same vehicle back for a second
pass), it joins that item flagged (`conflict`, code `tag_reread`), so the risk engine holds it for an officer
(identity_conflict) and still checks the tag's watchlists on it; past the hold it joins as any tag. A UHF read at one
of a reader's `exit_antennas` (facing the lane's exit) is of a vehicle leaving: it joins no item being scanned (only
an open item that has the tag already, its own); a tag of a vehicle recorded in the lane (open, in a field as an
item's, or held) is that vehicle seen at the exit (`tags_at_exit`, log `reader.tag_at_exit`), and a tag no recorded
vehicle carries is counted (`unrecorded_tags_at_exit`) and logged (`reader.unrecorded_tag_at_exit`, warning). The
same tag read then at another antenna is attributed as any read. An
item takes at most MAX_ITEM_TAGS tags; past them a tag is counted, not recorded, and the item's tags are flagged.
A seal's tag (its user memory says so) is the seal reader's to report, with its state, and never becomes a vehicle
tag. A 125 kHz tag becomes an `rfid` identity; a UHF tag read over LLRP becomes `rfid_tid` (its factory TID) and
`rfid_epc`. UHF tags are bound by TID (drivers.rfid.llrp.binding): a TID whose EPC changed or
that is present at two readers at once is logged, published on the screen (event "rfid_flag") and
flagged on the identity (`conflict`, and `conflicts`: its code with the values). An e-seal in range of a seal
reader (drivers.seal) becomes a `seal` identity, with its state, of one item: the one that entered last when it is
first heard, or else the next to open; every seal report heard meanwhile (in range, opened, tampered) is one of that
item's `seal_events`, so a seal tampered in the lane stays on record even if it reads intact again.
A seal is its item's while it stays in range, also after that item's record is written: a seal
reader reaches the vehicle waiting at the barrier, and the vehicle behind it, arriving without a
seal, must not show its seal. A seal that left the range (silence, or the reader's link lost) stays its item's
for `seal_hold_s` (`[seals] hold_s`) after: the vehicle may still be at the barrier when it is heard again, and it
then joins that item if still open, else none, never a newer one. Once the item's vehicle has left the lane
(`left`, a gantry's exit or search-bay loop), its seals are its own no longer as soon as they are out of range: a
vehicle brought back through the lane is read anew. A seal read over LLRP tag memory is a UHF tag too: once its TID is
known as a seal's (the seal reader names it), that tag's reads are the seal's identity (`seal`, with
`checks["tid"]`), never also the vehicle's `rfid_tid`/`rfid_epc`, whichever of the two was heard
first. edge.identity fuses the reads when the record is written.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from central_sync.schema import ConflictNote, Identity, SealEventOut, SealStatus
from drivers.errors import DriverError
from drivers.rfid.llrp.binding import BindingFlag, TidBinder
from drivers.seal import SealGone, SealReport, SealSeen
from drivers.seal.memory import is_seal_memory
from edge.devices import Devices
from edge.events import EventBus
from edge.identity import MAX_HELD_TAGS, TAG_HOLD_S, Conflict, with_conflicts
from edge.inspection import Item
from edge.seals import HOLD_S

log = structlog.get_logger()

BADGE_READER = "badge"
MAX_ITEM_TAGS = 32
"""Reader tags one item takes (a vehicle carries a few: its own, its trailer's, its containers'), counted as their
identities (a UHF tag gives two, its TID and EPC: 2 x MAX_ITEM_TAGS); a tag read past them (a reader reaching into
the yard, a device answering as thousands of tags or cycling one TID through EPCs) is not recorded, and the item's
tags are flagged."""
TAG_KINDS = ("rfid", "rfid_tid", "rfid_epc")
"""The identities a reader's tag gives."""


@dataclass
class TagWindow:
    devices: Devices
    events: EventBus
    binder: TidBinder = field(default_factory=TidBinder)
    _open: dict[str, Item] = field(default_factory=dict)
    _present: dict[tuple[str, str], list[Identity]] = field(default_factory=dict)
    """Identities of the tags (and seals) in a reader's field now, by (reader, tag): they belong to an item opened
    meanwhile."""
    _tag_holders: dict[tuple[str, str], str] = field(default_factory=dict)
    """The item (id) each tag in a reader's field joined, by (reader, tag), until the tag is removed: no other item
    takes it meanwhile, also once that item's record is written."""
    _seal_tids: set[str] = field(default_factory=set)
    """TIDs of the e-seal tags heard so far: their reads are the seal's identity, not the vehicle's."""
    _seal_holders: dict[tuple[str, str], str] = field(default_factory=dict)
    """The item (id) each seal in range joined, by (reader, seal): no other item takes it while it stays in range, nor
    for `seal_hold_s` after it left."""
    _seal_left: dict[tuple[str, str], float] = field(default_factory=dict)
    """When each seal holding an item left the range (its reader's loop time), by (reader, seal)."""
    _seal_item_left: set[tuple[str, str]] = field(default_factory=set)
    """Seals still in range whose item's vehicle has left the lane: theirs no longer once they leave the range."""
    seal_hold_s: float = HOLD_S
    _flooded: set[str] = field(default_factory=set)
    """The open items that were offered a tag past MAX_ITEM_TAGS (their tags are flagged)."""
    tags_not_recorded: int = 0
    """Tags past MAX_ITEM_TAGS not recorded, on every item so far."""
    tag_hold_s: float = TAG_HOLD_S
    _held: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    """Tags recorded on an item whose record is written, out of every reader's field, by tag: (item id, reader, when
    it left the field or the record was written, the later, as loop time), oldest first; for `tag_hold_s`, at most
    MAX_HELD_TAGS."""
    tags_reread: int = 0
    """Tags read again within `tag_hold_s` of leaving a written record, joined to another item flagged."""
    _at_exit: dict[tuple[str, str], tuple[str | None, list[Identity]]] = field(default_factory=dict)
    """Tags read at an exit antenna and at no other yet, by (reader, tag): their EPC and bound identities, which a read
    at another antenna of the same EPC takes (its binding flags with it)."""
    tags_at_exit: int = 0
    """Reads at an exit antenna of a tag of a vehicle recorded in the lane (that vehicle seen at the exit)."""
    unrecorded_tags_at_exit: int = 0
    """Reads at an exit antenna of a tag no vehicle recorded in the lane carries (joined to no item)."""

    def start(self, item: Item) -> None:
        for (reader, tag), identities in self._present.items():
            if reader.startswith("seal:"):
                if self._takes_seal((reader, tag), item):
                    _add(item, identities)
                    item.seal_events += [_seal_event(i, i.seal) for i in identities if i.seal is not None]
                continue
            holder = self._tag_holders.get((reader, tag))
            if holder is not None:
                log.info("reader.tag_kept", tag=tag, reader=reader, item=holder, entering=item.id,
                         detail=f"tag {tag} still in the field of {reader} stays with item {holder}, which "
                                f"it joined; item {item.id} entering now does not take it")
                continue
            self._join(item, (reader, tag), identities)
        self._open[item.id] = item

    def _takes_seal(self, key: tuple[str, str], item: Item) -> bool:
        """Whether the item takes the seal in range: it does unless another item, open or recorded, took it."""
        holder = self._seal_holders.setdefault(key, item.id)
        if holder != item.id:
            reader = key[0].removeprefix("seal:")
            log.info("reader.seal_kept", seal=key[1], reader=reader, item=holder, entering=item.id,
                     detail=f"seal {key[1]} still in range of seal reader {reader} stays with item {holder}, which "
                            f"it joined; item {item.id} does not take it")
        return holder == item.id

    def _holder(self, identities: list[Identity]) -> Item | None:
        """The open item that has these identities (a reader's tag joins one item at a time), or None."""
        values = {(i.kind, i.value) for i in identities}
        return next((item for item in self._open.values()
                     if any((i.kind, i.value) in values for i in item.identities)), None)

    def stop(self, item: Item) -> None:
        """The item's record is written: its tags out of the field are remembered as its own (`_held`); those still
        in it stay its own while they are, and are remembered when they leave."""
        self._open.pop(item.id, None)
        self._flooded.discard(item.id)
        present = {tag for (reader, tag) in self._tag_holders if not reader.startswith("seal:")}
        now = _now()
        for reader, tag in {(i.source, _tag_of(i)) for i in item.identities if i.kind in TAG_KINDS}:
            if tag not in present:
                self._hold(tag, item.id, reader, now)

    def _hold(self, tag: str, item_id: str, reader: str, t: float) -> None:
        """Remember the tag as the item's (written record) from `t` on; past MAX_HELD_TAGS the oldest is let go."""
        self._held.pop(tag, None)  # put back last: the dict stays oldest first
        self._held[tag] = (item_id, reader, t)
        if len(self._held) > MAX_HELD_TAGS:
            del self._held[next(iter(self._held))]

    def _holding(self, tag: str, now: float) -> tuple[str, str, float] | None:
        """The written item the tag is remembered for (item id, reader, since), dropping holds `tag_hold_s` old."""
        while self._held:
            oldest = next(iter(self._held))
            if now - self._held[oldest][2] < self.tag_hold_s:
                break
            del self._held[oldest]
        return self._held.get(tag)

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
                self._seal_seen(name, event.report, getattr(seals, "tid_of", {}).get(event.report.seal_id))
            elif isinstance(event, SealGone):
                self._seal_gone(name, event)

    def _seal_gone(self, reader_name: str, event: SealGone) -> None:
        """A seal left the range: it is no longer present, but stays its item's for `seal_hold_s`."""
        key = (f"seal:{reader_name}", event.seal_id)
        self._present.pop(key, None)
        holder = self._seal_holders.get(key)
        if key in self._seal_item_left:
            self._release_seal(key, f"seal {event.seal_id} left the range of seal reader {reader_name} "
                                    f"({event.reason}) after its item {holder}'s vehicle left the lane")
        elif holder is not None:
            self._seal_left[key] = event.t
            log.info("reader.seal_held", seal=event.seal_id, reader=reader_name, item=holder, reason=event.reason,
                     detail=f"seal {event.seal_id} left the range of seal reader {reader_name} ({event.reason}) and "
                            f"stays item {holder}'s for {self.seal_hold_s:g} s: heard again meanwhile, it joins no "
                            f"other item")

    def _release_seals(self, now: float) -> None:
        """Seals that left the range `seal_hold_s` ago or more are no item's any more (heard again, they join anew)."""
        for key in [k for k, left in self._seal_left.items() if now - left >= self.seal_hold_s]:
            del self._seal_left[key]
            self._seal_holders.pop(key, None)

    def left(self, item_id: str) -> None:
        """The item's vehicle has left the lane: its seals out of range are no item's any more (heard again, they join
        anew); one still in range stays its until it leaves the range."""
        for key in [k for k, holder in self._seal_holders.items() if holder == item_id]:
            if key in self._seal_left:
                self._release_seal(key, f"seal {key[1]} out of range of seal reader {key[0].removeprefix('seal:')}: "
                                        f"its item {item_id}'s vehicle left the lane")
            else:
                self._seal_item_left.add(key)

    def _release_seal(self, key: tuple[str, str], detail: str) -> None:
        """The seal is no item's any more before its hold ran out: heard again, it joins anew."""
        holder = self._seal_holders.pop(key, None)
        self._seal_left.pop(key, None)
        self._seal_item_left.discard(key)
        log.info("reader.seal_released", seal=key[1], reader=key[0].removeprefix("seal:"), item=holder,
                 detail=detail + "; heard again, it joins the item then in the lane")

    def _seal_seen(self, reader_name: str, report: SealReport, tid: str | None = None) -> None:
        """A seal in range, or its new state: an identity and a seal event of the item it joined (first heard: the
        open item that entered last), none of any other."""
        if tid is not None:
            self._seal_tag(tid)
        status = SealStatus(state=report.state, battery_low=report.battery_low, battery_pct=report.battery_pct,
                            last_event_at=report.last_event_at, events=report.events)
        identity = Identity(kind="seal", value=report.seal_id, source=reader_name, read_at=datetime.now(UTC),
                            checks={"tid": tid} if tid else {}, seal=status)
        key = (f"seal:{reader_name}", report.seal_id)
        self._release_seals(report.t)
        self._seal_left.pop(key, None)  # in range again: its item's while it stays
        self._present[key] = [identity]
        last = next(reversed(self._open.values()), None)
        item = self._open.get(self._seal_holders.get(key, "")) or \
            (last if last is not None and self._takes_seal(key, last) else None)
        if item is not None:
            item.identities.append(identity)
            item.seal_events.append(_seal_event(identity, status))
            item.identified()
        self.events.publish("seal", {"seal": report.seal_id, "state": report.state, "reader": reader_name,
                                     "battery_low": report.battery_low})

    def _seal_tag(self, tid: str) -> None:
        """The tag with this TID is a seal's: the rfid identities its reads gave leave the open items and the
        tags present (they were the seal's, heard before the seal reader decoded its memory)."""
        if tid in self._seal_tids:
            return
        self._seal_tids.add(tid)
        self._held.pop(tid, None)
        for key in [k for k in self._present if k[1] == tid and not k[0].startswith("seal:")]:
            del self._present[key]
            self._tag_holders.pop(key, None)
            self.binder.gone(tid, key[0])  # nor is it bound as a vehicle's tag (no two-lanes flag for a seal)
        for item in self._open.values():
            item.identities[:] = [i for i in item.identities if not _of_tag(i, tid)]
        log.info("reader.seal_tag", tid=tid, detail=f"tag TID {tid} is an e-seal's: recorded as the seal, not as "
                                                    "the vehicle's rfid_tid/rfid_epc")

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
        if event.tag.tech == "uhf-tid" and tag in self._seal_tids:
            return  # a seal's tag: the seal reader records it as the seal
        if is_seal_memory(getattr(event, "user", None)):
            return
        key = (reader_name, tag)
        stored = self._at_exit.pop(key, None)
        identities = stored[1] if stored and stored[0] == getattr(event, "epc", None) else \
            self._identities(reader_name, event)
        if (antenna := getattr(event, "antenna", None)) in self._exit_antennas(reader_name):
            self._at_exit[key] = (getattr(event, "epc", None), identities)
            self._seen_at_exit(key, antenna, identities, event.t)
            return
        self._present[(reader_name, tag)] = identities
        item = self._joins((reader_name, tag), identities)
        if item is not None:
            self._join(item, (reader_name, tag), identities)
        elif (held := self._holding(tag, event.t)) is not None:
            self._hold(tag, held[0], held[1], event.t)  # back in the field, no item to join: held while it stays
        log.info("reader.tag_seen", reader=reader_name, tag=tag, open_items=len(self._open),
                 item=item.id if item else None)

    def _exit_antennas(self, reader_name: str) -> tuple[int, ...]:
        """The reader's antennas facing the lane's exit (none for a reader without them)."""
        return getattr(getattr(self.devices.readers.get(reader_name), "cfg", None), "exit_antennas", ())

    def _seen_at_exit(self, key: tuple[str, str], antenna: int, identities: list[Identity], t: float) -> None:
        """A read at an exit antenna: a vehicle leaving. It joins no item being scanned; an open item that has the tag
        (its own) takes what it lacks (a new EPC, flagged); counted and logged as the recorded vehicle seen at the
        exit, or as a tag no recorded vehicle carries."""
        reader, tag = key
        own = self._holder(identities)
        if own is not None:
            self._join(own, key, identities)
        item = own.id if own is not None else \
            next((h for (_, other), h in self._tag_holders.items() if other == tag), None)
        if item is None and (held := self._holding(tag, t)) is not None:
            item = held[0]
            self._hold(tag, held[0], held[1], t)  # seen again: held while it stays in the field
        if item is not None:
            self.tags_at_exit += 1
            log.info("reader.tag_at_exit", tag=tag, reader=reader, antenna=antenna, item=item,
                     detail=f"tag {tag} read by {reader} at exit antenna {antenna} is item {item}'s: that vehicle "
                            f"seen at the exit; it joins no other item")
            return
        self.unrecorded_tags_at_exit += 1
        log.warning("reader.unrecorded_tag_at_exit", tag=tag, reader=reader, antenna=antenna,
                    open_items=len(self._open), hold_s=self.tag_hold_s,
                    detail=f"tag {tag} read by {reader} at exit antenna {antenna} is on no vehicle recorded in the "
                           f"lane in the last {self.tag_hold_s:g} s: a vehicle never recorded may be leaving; the "
                           f"tag joins no item")

    def _joins(self, key: tuple[str, str], identities: list[Identity]) -> Item | None:
        """The item a tag read joins: the open item that has it (a tag that fell silent for the reader's removal time
        and came back stays with it), none while the tag stays in the field of the item it joined, whose record is
        written (the vehicle ahead, still under the antenna), else the open item that entered last."""
        holder = self._holder(identities)
        if holder is not None or key in self._tag_holders:
            return holder
        return next(reversed(self._open.values()), None)

    def _join(self, item: Item, key: tuple[str, str], identities: list[Identity]) -> None:
        """The tag's identities join the item, which holds the tag while it stays in the field; a tag past the
        item's MAX_ITEM_TAGS is not recorded (`_flood`)."""
        tags = [(i.kind, i.value) for i in item.identities if i.kind in TAG_KINDS]
        if len(tags) >= 2 * MAX_ITEM_TAGS and any((i.kind, i.value) not in tags for i in identities):
            self._flood(item, key)
            return
        if all((i.kind, i.value) not in tags for i in identities):
            identities = self._reread(item, key, identities)
        _add(item, identities)
        self._tag_holders[key] = item.id

    def _reread(self, item: Item, key: tuple[str, str], identities: list[Identity]) -> list[Identity]:
        """The tag's identities as they join the item: flagged (`tag_reread`) when the tag is remembered as another
        item's, whose record was written less than `tag_hold_s` before or after the tag left the field; counted and
        logged once per item it joins."""
        now = _now()
        held = self._holding(key[1], now)
        if held is None or held[0] == item.id:
            return identities
        before, reader, since = held
        seconds = f"{max(0.0, now - since):.0f}"
        self.tags_reread += 1
        detail = (f"tag {key[1]} read by {key[0]} was item {before}'s tag {seconds} s before: it may still be that "
                  f"vehicle's, not this one's")
        log.warning("reader.tag_reread", tag=key[1], reader=key[0], item=before, entering=item.id,
                    hold_s=self.tag_hold_s, detail=f"{detail} (item {item.id} takes it flagged)")
        note = ConflictNote(code="tag_reread", values={"tag": key[1], "reader": key[0], "item": before,
                                                       "seconds": seconds})
        return [with_conflicts(i, [(detail, note)]) for i in identities]

    def _flood(self, item: Item, key: tuple[str, str]) -> None:
        """A tag past MAX_ITEM_TAGS: counted; the first on an item is logged, and flags the item's tags (`conflict`):
        a record whose tags cannot be told from a flood of others does not say which vehicle it is."""
        self.tags_not_recorded += 1
        if item.id in self._flooded:
            return
        self._flooded.add(item.id)
        detail = (f"reader {key[0]} read more than {MAX_ITEM_TAGS} tags during item {item.id} (tag {key[1]} and "
                  f"those after it are not recorded): these tags may not be its vehicle's")
        log.warning("reader.tag_flood", reader=key[0], item=item.id, detail=detail)
        flood = (detail, ConflictNote(code="tag_flood", values={"reader": key[0], "limit": str(MAX_ITEM_TAGS),
                                                                "item": item.id, "tag": key[1]}))
        item.identities[:] = [with_conflicts(i, [flood]) if i.kind in TAG_KINDS else i for i in item.identities]
        item.identified()

    def _removed(self, reader_name: str, event: Any) -> None:
        """The tag left the reader's field: if its item's record is written, the tag is remembered as that item's
        (`_held`); if the item is open, the item keeps it (`_holder`) and remembers it when it is written."""
        self._present.pop((reader_name, event.tag.hex), None)
        self._at_exit.pop((reader_name, event.tag.hex), None)
        holder = self._tag_holders.pop((reader_name, event.tag.hex), None)
        if event.tag.tech == "uhf-tid":
            self.binder.gone(event.tag.hex, reader_name)
        if any(key[1] == event.tag.hex for key in self._tag_holders):
            return  # still in another reader's field: remembered when it leaves that one
        if holder is not None and holder not in self._open:
            self._hold(event.tag.hex, holder, reader_name, event.t)
        elif holder is None and (held := self._holding(event.tag.hex, event.t)) is not None:
            self._hold(event.tag.hex, held[0], held[1], event.t)  # read again and joined none: held from now

    def _identities(self, reader_name: str, event: Any) -> list[Identity]:
        """The identities a tag read gives: rfid for 125 kHz; rfid_tid and rfid_epc for UHF (bound by TID)."""
        tech, tag, epc = event.tag.tech, event.tag.hex, getattr(event, "epc", None)
        if tech == "uhf-tid":
            flags = self._bind(tag, epc or "", reader_name)
            tid = Identity(kind="rfid_tid", value=tag, source=reader_name)
            return [with_conflicts(tid, _found(flags, "two_lanes"))] + \
                ([with_conflicts(Identity(kind="rfid_epc", value=epc, source=reader_name, checks={"tid": tag}),
                                 _found(flags, "epc_changed"))] if epc else [])
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


def _found(flags: list[BindingFlag], kind: str) -> list[Conflict]:
    """The binding flags of this kind as the identity's conflicts: the sentence and its code with the values."""
    return [(f.detail, ConflictNote(code=f.kind, values=f.values)) for f in flags if f.kind == kind]


def _now() -> float:
    """The event loop's clock (the readers' event times), or the same monotonic clock outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _tag_of(identity: Identity) -> str:
    """The tag (as its reader reports it) a tag identity was read from: a UHF EPC bound to a TID is that TID's."""
    return identity.checks.get("tid", identity.value) if identity.kind == "rfid_epc" else identity.value


def _of_tag(identity: Identity, tid: str) -> bool:
    """Whether the identity is a UHF read of the tag with this TID (its TID, or its EPC bound to that TID)."""
    return (identity.kind == "rfid_tid" and identity.value == tid) or \
        (identity.kind == "rfid_epc" and identity.checks.get("tid") == tid)


def _add(item: Item, identities: list[Identity]) -> None:
    """Add the identities the item does not have yet."""
    added = False
    for identity in identities:
        if all((i.kind, i.value) != (identity.kind, identity.value) for i in item.identities):
            item.identities.append(identity)
            added = True
    if added:
        item.identified()
