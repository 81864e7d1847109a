"""LLRP parameters used by this client, as frozen values with their encoding (pure).

Type numbers are those of LLRP 1.0.1 (EPCglobal), as in the LLRP Toolkit definitions. Each
`decode_*` reads the parameter's fixed fields and the sub-parameters it needs; sub-parameters it
does not use are skipped (TLV), and a mandatory one that is missing raises `LlrpError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.rfid.llrp.errors import LlrpError
from drivers.rfid.llrp.wire import Fields, RawParam, tlv, tv, utf8

# TV parameters
ANTENNA_ID, FIRST_SEEN_UTC, LAST_SEEN_UTC, PEAK_RSSI, TAG_SEEN_COUNT = 1, 2, 4, 6, 8
ROSPEC_ID, EPC_96, ACCESS_SPEC_ID = 9, 13, 16
# TLV parameters
UTC_TIMESTAMP, UPTIME = 128, 129
GENERAL_DEVICE_CAPABILITIES, RECEIVE_SENSITIVITY_ENTRY, PER_ANTENNA_AIR_PROTOCOL, GPIO_CAPABILITIES = 137, 139, 140, 141
ROSPEC, RO_BOUNDARY_SPEC, ROSPEC_START_TRIGGER, ROSPEC_STOP_TRIGGER = 177, 178, 179, 182
AISPEC, AISPEC_STOP_TRIGGER, INVENTORY_PARAMETER_SPEC = 183, 184, 186
ACCESS_SPEC, ACCESS_SPEC_STOP_TRIGGER, ACCESS_COMMAND = 207, 208, 209
KEEPALIVE_SPEC, ANTENNA_PROPERTIES = 220, 221
RO_REPORT_SPEC, TAG_REPORT_CONTENT_SELECTOR, ACCESS_REPORT_SPEC, TAG_REPORT_DATA, EPC_DATA = 237, 238, 239, 240, 241
READER_EVENT_NOTIFICATION_SPEC, EVENT_NOTIFICATION_STATE, READER_EVENT_NOTIFICATION_DATA = 244, 245, 246
ANTENNA_EVENT, CONNECTION_ATTEMPT_EVENT, CONNECTION_CLOSE_EVENT = 255, 256, 257
LLRP_STATUS = 287
C1G2_TAG_SPEC, C1G2_TARGET_TAG, C1G2_READ, C1G2_READ_OP_SPEC_RESULT = 338, 339, 341, 349

EPC_GLOBAL_C1G2 = 1
"""ProtocolID of EPCglobal Class 1 Gen 2 (the UHF air protocol)."""
TID_BANK = 2
USER_BANK = 3
READ_MEMORY_OVERRUN = 4
"""C1G2ReadOpSpecResult result code: the words asked for lie beyond the tag's memory (a tag without user memory)."""
ANTENNA_EVENT_TYPE = 8
"""EventNotificationState type of AntennaEvent."""

STATUS_NAMES = {0: "M_Success", 100: "M_ParameterError", 101: "M_FieldError", 102: "M_UnexpectedParameter",
                103: "M_MissingParameter", 104: "M_DuplicateParameter", 105: "M_OverflowParameter",
                106: "M_OverflowField", 107: "M_UnknownParameter", 108: "M_UnknownField",
                109: "M_UnsupportedMessage", 110: "M_UnsupportedVersion", 111: "M_UnsupportedParameter",
                200: "P_ParameterError", 201: "P_FieldError", 202: "P_UnexpectedParameter",
                203: "P_MissingParameter", 204: "P_DuplicateParameter", 205: "P_OverflowParameter",
                206: "P_OverflowField", 207: "P_UnknownParameter", 208: "P_UnknownField",
                209: "P_UnsupportedParameter", 300: "A_Invalid", 301: "A_OutOfRange", 401: "R_DeviceError"}
CONNECTION_STATUS = {0: "Success", 1: "a reader-initiated connection already exists",
                     2: "a client-initiated connection already exists",
                     3: "failed for a reason other than an existing connection",
                     4: "another connection attempted"}


def find(params: list[RawParam], param_type: int) -> RawParam | None:
    """The first parameter of this type."""
    return next((p for p in params if p.type == param_type), None)


def need(params: list[RawParam], param_type: int, name: str, where: str) -> RawParam:
    """The mandatory parameter of this type, or LlrpError naming it."""
    found = find(params, param_type)
    if found is None:
        raise LlrpError(f"{where} lacks its mandatory {name} parameter (type {param_type})",
                        reason="missing_parameter")
    return found


def tv_int(param: RawParam | None, fmt: str) -> int | None:
    """A TV parameter's integer value, None when absent."""
    return None if param is None else int(struct.unpack(">" + fmt, param.value)[0])


@dataclass(frozen=True)
class LlrpStatus:
    """The reader's answer to a request: status code and its description."""

    code: int = 0
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def text(self) -> str:
        """'status 100 (M_ParameterError): description'."""
        name = STATUS_NAMES.get(self.code, "unknown")
        return f"status {self.code} ({name})" + (f": {self.description}" if self.description else "")

    def encode(self) -> bytes:
        return tlv(LLRP_STATUS, struct.pack(">H", self.code) + utf8(self.description))

    @classmethod
    def decode(cls, raw: RawParam) -> LlrpStatus:
        f = Fields(raw.value, "LLRPStatus")
        return cls(f.one("H", "StatusCode"), f.utf8("ErrorDescription"))


@dataclass(frozen=True)
class DeviceCapabilities:
    """GeneralDeviceCapabilities: antennas, maker and model numbers, firmware version."""

    max_antennas: int
    manufacturer: int
    model: int
    firmware: str

    def encode(self) -> bytes:
        fields = struct.pack(">HHII", self.max_antennas, 0x4000, self.manufacturer, self.model) + utf8(self.firmware)
        subs = tlv(RECEIVE_SENSITIVITY_ENTRY, struct.pack(">Hh", 1, 0)) + tlv(GPIO_CAPABILITIES, struct.pack(">HH", 0, 0))
        subs += b"".join(tlv(PER_ANTENNA_AIR_PROTOCOL, struct.pack(">HHB", a, 1, EPC_GLOBAL_C1G2))
                         for a in range(1, self.max_antennas + 1))
        return tlv(GENERAL_DEVICE_CAPABILITIES, fields + subs)

    @classmethod
    def decode(cls, raw: RawParam) -> DeviceCapabilities:
        f = Fields(raw.value, "GeneralDeviceCapabilities")
        antennas, _flags, maker, model = f.take("HHII", "MaxNumberOfAntennaSupported..ModelName")
        return cls(antennas, maker, model, f.utf8("ReaderFirmwareVersion"))


@dataclass(frozen=True)
class RoSpec:
    """A reader operation: inventory on `antennas`, started at once, never stopped, one report per N tags.

    `content` is the TagReportContentSelector's 10 flags (ROSpecID .. AccessSpecID, MSB first).
    """

    rospec_id: int
    antennas: tuple[int, ...]
    priority: int = 0
    state: int = 0
    report_every_n: int = 1
    content: int = 0x3FF

    def encode(self) -> bytes:
        boundary = tlv(RO_BOUNDARY_SPEC, tlv(ROSPEC_START_TRIGGER, b"\x01")
                       + tlv(ROSPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0)))
        ai = tlv(AISPEC, struct.pack(f">H{len(self.antennas)}H", len(self.antennas), *self.antennas)
                 + tlv(AISPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))
                 + tlv(INVENTORY_PARAMETER_SPEC, struct.pack(">HB", 1, EPC_GLOBAL_C1G2)))
        report = tlv(RO_REPORT_SPEC, struct.pack(">BH", 2, self.report_every_n)
                     + tlv(TAG_REPORT_CONTENT_SELECTOR, struct.pack(">H", self.content << 6)))
        return tlv(ROSPEC, struct.pack(">IBB", self.rospec_id, self.priority, self.state) + boundary + ai + report)

    @classmethod
    def decode(cls, raw: RawParam) -> RoSpec:
        f = Fields(raw.value, "ROSpec")
        rospec_id, priority, state = f.take("IBB", "ROSpecID..CurrentState")
        subs = f.params()
        need(subs, RO_BOUNDARY_SPEC, "ROBoundarySpec", "ROSpec")
        ai = Fields(need(subs, AISPEC, "AISpec", "ROSpec").value, "AISpec")
        antennas = ai.take(f"{ai.one('H', 'AntennaCount')}H", "AntennaIDs")
        n, content = 0, 0
        report = find(subs, RO_REPORT_SPEC)
        if report is not None:
            rf = Fields(report.value, "ROReportSpec")
            n = rf.take("BH", "ROReportTrigger..N")[1]
            selector = find(rf.params(), TAG_REPORT_CONTENT_SELECTOR)
            content = 0 if selector is None else Fields(selector.value, "TagReportContentSelector").one("H", "flags") >> 6
        return cls(rospec_id, tuple(antennas), priority, state, n, content)


@dataclass(frozen=True)
class MemoryRead:
    """One more C1G2Read in an AccessSpec's AccessCommand: `word_count` words of `bank` from `word_pointer`."""

    op_spec_id: int
    bank: int
    word_pointer: int
    word_count: int

    def encode(self) -> bytes:
        return tlv(C1G2_READ, struct.pack(">HIBHH", self.op_spec_id, 0, self.bank << 6, self.word_pointer,
                                          self.word_count))

    @classmethod
    def decode(cls, raw: RawParam) -> MemoryRead:
        op_id, _password, bank, pointer, count = Fields(raw.value, "C1G2Read").take("HIBHH", "OpSpecID..WordCount")
        return cls(op_id, bank >> 6, pointer, count)


@dataclass(frozen=True)
class AccessSpec:
    """Read `word_count` words of memory `bank` (2 = TID) of every tag the ROSpec singulates, then the `more` reads.

    A reader runs one AccessSpec per singulated tag, so every memory read goes into its one AccessCommand
    (one OpSpec each), as the standard allows.
    """

    access_spec_id: int
    rospec_id: int
    op_spec_id: int
    bank: int = TID_BANK
    word_pointer: int = 0
    word_count: int = 6
    antenna: int = 0
    enabled: bool = False
    more: tuple[MemoryRead, ...] = ()

    @property
    def reads(self) -> tuple[MemoryRead, ...]:
        """Every memory read of the AccessCommand, the first one first."""
        return (MemoryRead(self.op_spec_id, self.bank, self.word_pointer, self.word_count), *self.more)

    def encode(self) -> bytes:
        target = tlv(C1G2_TARGET_TAG, struct.pack(">BHHH", (self.bank << 6) | 0x20, 0, 0, 0))
        command = tlv(ACCESS_COMMAND, tlv(C1G2_TAG_SPEC, target) + b"".join(r.encode() for r in self.reads))
        return tlv(ACCESS_SPEC, struct.pack(">IHBBI", self.access_spec_id, self.antenna, EPC_GLOBAL_C1G2,
                                            0x80 if self.enabled else 0, self.rospec_id)
                   + tlv(ACCESS_SPEC_STOP_TRIGGER, struct.pack(">BH", 0, 0)) + command
                   + tlv(ACCESS_REPORT_SPEC, b"\x00"))

    @classmethod
    def decode(cls, raw: RawParam) -> AccessSpec:
        f = Fields(raw.value, "AccessSpec")
        spec_id, antenna, _protocol, state, rospec_id = f.take("IHBBI", "AccessSpecID..ROSpecID")
        command = Fields(need(f.params(), ACCESS_COMMAND, "AccessCommand", "AccessSpec").value, "AccessCommand")
        subs = command.params()
        need(subs, C1G2_READ, "C1G2Read", "AccessCommand")
        first, *more = [MemoryRead.decode(p) for p in subs if p.type == C1G2_READ]
        return cls(spec_id, rospec_id, first.op_spec_id, first.bank, first.word_pointer, first.word_count, antenna,
                   bool(state & 0x80), tuple(more))


@dataclass(frozen=True)
class OpRead:
    """C1G2ReadOpSpecResult: which read, its result (0 = success) and the words read."""

    op_spec_id: int
    result: int
    data: bytes

    def encode(self) -> bytes:
        return tlv(C1G2_READ_OP_SPEC_RESULT, struct.pack(">BHH", self.result, self.op_spec_id, len(self.data) // 2)
                   + self.data)

    @classmethod
    def decode(cls, raw: RawParam) -> OpRead:
        f = Fields(raw.value, "C1G2ReadOpSpecResult")
        result, op_id, words = f.take("BHH", "Result..ReadDataWordCount")
        return cls(op_id, result, f.raw(2 * words, "ReadData"))


@dataclass(frozen=True)
class TagReport:
    """TagReportData: the EPC (as EPC-96 TV or EPCData TLV) and what the content selector enabled."""

    epc: bytes
    epc96: bool = False
    rospec_id: int | None = None
    antenna: int | None = None
    rssi_dbm: int | None = None
    first_seen_us: int | None = None
    last_seen_us: int | None = None
    seen_count: int | None = None
    access_spec_id: int | None = None
    reads: tuple[OpRead, ...] = ()

    def encode(self) -> bytes:
        if self.epc96:
            out = tv(EPC_96, self.epc)
        else:
            out = tlv(EPC_DATA, struct.pack(">H", 8 * len(self.epc)) + self.epc)
        for ptype, fmt, value in ((ROSPEC_ID, "I", self.rospec_id), (ANTENNA_ID, "H", self.antenna),
                                  (PEAK_RSSI, "b", self.rssi_dbm), (FIRST_SEEN_UTC, "Q", self.first_seen_us),
                                  (LAST_SEEN_UTC, "Q", self.last_seen_us), (TAG_SEEN_COUNT, "H", self.seen_count),
                                  (ACCESS_SPEC_ID, "I", self.access_spec_id)):
            if value is not None:
                out += tv(ptype, struct.pack(">" + fmt, value))
        return tlv(TAG_REPORT_DATA, out + b"".join(r.encode() for r in self.reads))

    @classmethod
    def decode(cls, raw: RawParam) -> TagReport:
        subs = Fields(raw.value, "TagReportData").params()
        by_type = {p.type: p for p in subs if p.tv}
        epc96 = by_type.get(EPC_96)
        epc = epc96.value if epc96 is not None else _epc_data(need(subs, EPC_DATA, "EPCData or EPC-96",
                                                                   "TagReportData"))
        return cls(epc, epc96 is not None, tv_int(by_type.get(ROSPEC_ID), "I"), tv_int(by_type.get(ANTENNA_ID), "H"),
                   tv_int(by_type.get(PEAK_RSSI), "b"), tv_int(by_type.get(FIRST_SEEN_UTC), "Q"),
                   tv_int(by_type.get(LAST_SEEN_UTC), "Q"), tv_int(by_type.get(TAG_SEEN_COUNT), "H"),
                   tv_int(by_type.get(ACCESS_SPEC_ID), "I"),
                   tuple(OpRead.decode(p) for p in subs if p.type == C1G2_READ_OP_SPEC_RESULT and not p.tv))


def _epc_data(raw: RawParam) -> bytes:
    f = Fields(raw.value, "EPCData")
    bits = f.one("H", "EPCLengthBits")
    return f.raw((bits + 7) // 8, "EPC")


@dataclass(frozen=True)
class AntennaProperties:
    """An antenna's state as the reader reports it: connected, and its gain in hundredths of dBi."""

    antenna: int
    connected: bool
    gain_cdbi: int = 0

    def encode(self) -> bytes:
        return tlv(ANTENNA_PROPERTIES, struct.pack(">BHh", 0x80 if self.connected else 0, self.antenna,
                                                   self.gain_cdbi))

    @classmethod
    def decode(cls, raw: RawParam) -> AntennaProperties:
        connected, antenna, gain = Fields(raw.value, "AntennaProperties").take("BHh", "AntennaConnected..AntennaGain")
        return cls(antenna, bool(connected & 0x80), gain)


@dataclass(frozen=True)
class AntennaEvent:
    """An antenna was connected or disconnected."""

    antenna: int
    connected: bool


@dataclass(frozen=True)
class ReaderEventData:
    """ReaderEventNotificationData: its UTC time and the events we act on."""

    timestamp_us: int
    connection_attempt: int | None = None
    antenna_event: AntennaEvent | None = None
    connection_close: bool = False

    def encode(self) -> bytes:
        out = tlv(UTC_TIMESTAMP, struct.pack(">Q", self.timestamp_us))
        if self.antenna_event is not None:
            out += tlv(ANTENNA_EVENT, struct.pack(">BH", int(self.antenna_event.connected),
                                                  self.antenna_event.antenna))
        if self.connection_attempt is not None:
            out += tlv(CONNECTION_ATTEMPT_EVENT, struct.pack(">H", self.connection_attempt))
        if self.connection_close:
            out += tlv(CONNECTION_CLOSE_EVENT, b"")
        return tlv(READER_EVENT_NOTIFICATION_DATA, out)

    @classmethod
    def decode(cls, raw: RawParam) -> ReaderEventData:
        subs = Fields(raw.value, "ReaderEventNotificationData").params()
        stamp = find(subs, UTC_TIMESTAMP) or find(subs, UPTIME)
        if stamp is None:
            raise LlrpError("ReaderEventNotificationData lacks its mandatory UTCTimestamp or Uptime parameter",
                            reason="missing_parameter")
        attempt, antenna = find(subs, CONNECTION_ATTEMPT_EVENT), find(subs, ANTENNA_EVENT)
        return cls(Fields(stamp.value, "UTCTimestamp").one("Q", "Microseconds"),
                   None if attempt is None else Fields(attempt.value, "ConnectionAttemptEvent").one("H", "Status"),
                   None if antenna is None else _antenna_event(antenna),
                   find(subs, CONNECTION_CLOSE_EVENT) is not None)


def _antenna_event(raw: RawParam) -> AntennaEvent:
    event_type, antenna = Fields(raw.value, "AntennaEvent").take("BH", "EventType..AntennaID")
    return AntennaEvent(antenna, event_type == 1)


def keepalive_spec(period_ms: int) -> bytes:
    """KeepaliveSpec: periodic every `period_ms`, or none when 0."""
    return tlv(KEEPALIVE_SPEC, struct.pack(">BI", 1 if period_ms else 0, period_ms))


def decode_keepalive_ms(raw: RawParam) -> int:
    """The keepalive period a KeepaliveSpec asks for (0 = none)."""
    trigger, period = Fields(raw.value, "KeepaliveSpec").take("BI", "KeepaliveTriggerType..PeriodicTriggerValue")
    return period if trigger == 1 else 0


def event_spec(states: tuple[tuple[int, bool], ...]) -> bytes:
    """ReaderEventNotificationSpec: each event type on or off."""
    return tlv(READER_EVENT_NOTIFICATION_SPEC, b"".join(
        tlv(EVENT_NOTIFICATION_STATE, struct.pack(">HB", event, 0x80 if on else 0)) for event, on in states))


def decode_event_spec(raw: RawParam) -> tuple[tuple[int, bool], ...]:
    """The (event type, on) pairs of a ReaderEventNotificationSpec."""
    out = []
    for p in Fields(raw.value, "ReaderEventNotificationSpec").params():
        if p.type == EVENT_NOTIFICATION_STATE:
            event, state = Fields(p.value, "EventNotificationState").take("HB", "EventType..NotificationState")
            out.append((event, bool(state & 0x80)))
    return tuple(out)
