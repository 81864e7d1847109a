"""LLRP 1.0.1 messages as values, their encoding, and a counting decoder for a reader's byte stream (pure).

Messages used (type numbers from the standard):

    GET_READER_CAPABILITIES 1 / _RESPONSE 11      GET_READER_CONFIG 2 / _RESPONSE 12
    SET_READER_CONFIG 3 / _RESPONSE 13
    ADD_ROSPEC 20 / 30, DELETE_ROSPEC 21 / 31, START_ROSPEC 22 / 32, ENABLE_ROSPEC 24 / 34
    ADD_ACCESSSPEC 40 / 50, DELETE_ACCESSSPEC 41 / 51, ENABLE_ACCESSSPEC 42 / 52
    RO_ACCESS_REPORT 61, KEEPALIVE 62, READER_EVENT_NOTIFICATION 63, KEEPALIVE_ACK 72
    CLOSE_CONNECTION 14 / _RESPONSE 4, ERROR_MESSAGE 100

`decode_message` raises `LlrpError` (one sentence naming the field and values) for a malformed
body; `LlrpDecoder` wraps the framer and it, never raises on input and counts what it rejected by
reason, as the EM4100 decoder does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from drivers.rfid.codec import DecoderStats
from drivers.rfid.llrp.errors import FramingError, LlrpError
from drivers.rfid.llrp.params import (
    ACCESS_SPEC,
    ANTENNA_PROPERTIES,
    GENERAL_DEVICE_CAPABILITIES,
    KEEPALIVE_SPEC,
    LLRP_STATUS,
    READER_EVENT_NOTIFICATION_DATA,
    READER_EVENT_NOTIFICATION_SPEC,
    ROSPEC,
    TAG_REPORT_DATA,
    AccessSpec,
    AntennaProperties,
    DeviceCapabilities,
    LlrpStatus,
    ReaderEventData,
    RoSpec,
    TagReport,
    decode_event_spec,
    decode_keepalive_ms,
    event_spec,
    find,
    keepalive_spec,
    need,
)
from drivers.rfid.llrp.wire import Fields, Frame, Framer, encode_frame

GET_READER_CAPABILITIES, GET_READER_CAPABILITIES_RESPONSE = 1, 11
GET_READER_CONFIG, GET_READER_CONFIG_RESPONSE = 2, 12
SET_READER_CONFIG, SET_READER_CONFIG_RESPONSE = 3, 13
CLOSE_CONNECTION, CLOSE_CONNECTION_RESPONSE = 14, 4
ADD_ROSPEC, DELETE_ROSPEC, START_ROSPEC, STOP_ROSPEC, ENABLE_ROSPEC = 20, 21, 22, 23, 24
ADD_ACCESSSPEC, DELETE_ACCESSSPEC, ENABLE_ACCESSSPEC = 40, 41, 42
RO_ACCESS_REPORT, KEEPALIVE, READER_EVENT_NOTIFICATION, KEEPALIVE_ACK = 61, 62, 63, 72
ERROR_MESSAGE = 100

NAMES = {GET_READER_CAPABILITIES: "GET_READER_CAPABILITIES", GET_READER_CONFIG: "GET_READER_CONFIG",
         SET_READER_CONFIG: "SET_READER_CONFIG",
         CLOSE_CONNECTION: "CLOSE_CONNECTION", ADD_ROSPEC: "ADD_ROSPEC", DELETE_ROSPEC: "DELETE_ROSPEC",
         START_ROSPEC: "START_ROSPEC", STOP_ROSPEC: "STOP_ROSPEC", ENABLE_ROSPEC: "ENABLE_ROSPEC",
         ADD_ACCESSSPEC: "ADD_ACCESSSPEC", DELETE_ACCESSSPEC: "DELETE_ACCESSSPEC",
         ENABLE_ACCESSSPEC: "ENABLE_ACCESSSPEC", RO_ACCESS_REPORT: "RO_ACCESS_REPORT", KEEPALIVE: "KEEPALIVE",
         READER_EVENT_NOTIFICATION: "READER_EVENT_NOTIFICATION", KEEPALIVE_ACK: "KEEPALIVE_ACK",
         ERROR_MESSAGE: "ERROR_MESSAGE"}
RESPONSE_TO = {GET_READER_CAPABILITIES: GET_READER_CAPABILITIES_RESPONSE, GET_READER_CONFIG: GET_READER_CONFIG_RESPONSE,
               SET_READER_CONFIG: SET_READER_CONFIG_RESPONSE, CLOSE_CONNECTION: CLOSE_CONNECTION_RESPONSE,
               ADD_ROSPEC: 30, DELETE_ROSPEC: 31, START_ROSPEC: 32, STOP_ROSPEC: 33, ENABLE_ROSPEC: 34,
               ADD_ACCESSSPEC: 50, DELETE_ACCESSSPEC: 51, ENABLE_ACCESSSPEC: 52}
"""Each request's response type; every response (and ERROR_MESSAGE) carries an LLRPStatus."""
SPEC_REQUESTS = (DELETE_ROSPEC, START_ROSPEC, STOP_ROSPEC, ENABLE_ROSPEC, DELETE_ACCESSSPEC, ENABLE_ACCESSSPEC)
EMPTY = (KEEPALIVE, KEEPALIVE_ACK, CLOSE_CONNECTION)
STATUS_ONLY = (*(RESPONSE_TO[t] for t in (*SPEC_REQUESTS, ADD_ROSPEC, ADD_ACCESSSPEC, SET_READER_CONFIG,
                                          CLOSE_CONNECTION)), ERROR_MESSAGE)


def message_name(msg_type: int) -> str:
    """The standard's name of a message type ('type 999' when unknown)."""
    if msg_type in NAMES:
        return NAMES[msg_type]
    request = next((req for req, resp in RESPONSE_TO.items() if resp == msg_type), None)
    return f"{NAMES[request]}_RESPONSE" if request is not None else f"type {msg_type}"


@dataclass(frozen=True)
class Empty:
    """A message with no body: KEEPALIVE, KEEPALIVE_ACK, CLOSE_CONNECTION."""

    type: int
    msg_id: int = 0

    def body(self) -> bytes:
        return b""


@dataclass(frozen=True)
class SpecRequest:
    """DELETE/START/STOP/ENABLE_ROSPEC and DELETE/ENABLE_ACCESSSPEC: one spec id (0 = all)."""

    type: int
    spec_id: int
    msg_id: int = 0

    def body(self) -> bytes:
        return struct.pack(">I", self.spec_id)


@dataclass(frozen=True)
class StatusResponse:
    """A response that carries only its LLRPStatus, or an ERROR_MESSAGE."""

    type: int
    status: LlrpStatus
    msg_id: int = 0

    def body(self) -> bytes:
        return self.status.encode()


@dataclass(frozen=True)
class GetCapabilities:
    """GET_READER_CAPABILITIES; `requested` 0 = all, 1 = general device capabilities."""

    requested: int = 1
    msg_id: int = 0
    type: int = GET_READER_CAPABILITIES

    def body(self) -> bytes:
        return bytes([self.requested])


@dataclass(frozen=True)
class CapabilitiesResponse:
    """GET_READER_CAPABILITIES_RESPONSE with the general device capabilities."""

    status: LlrpStatus
    device: DeviceCapabilities | None = None
    msg_id: int = 0
    type: int = GET_READER_CAPABILITIES_RESPONSE

    def body(self) -> bytes:
        return self.status.encode() + (self.device.encode() if self.device else b"")


@dataclass(frozen=True)
class GetReaderConfig:
    """GET_READER_CONFIG; `requested` 2 = AntennaProperties, of `antenna` (0 = every antenna)."""

    requested: int = 2
    antenna: int = 0
    msg_id: int = 0
    type: int = GET_READER_CONFIG

    def body(self) -> bytes:
        return struct.pack(">HBHH", self.antenna, self.requested, 0, 0)


@dataclass(frozen=True)
class ReaderConfigResponse:
    """GET_READER_CONFIG_RESPONSE with the antennas' properties (connected or not)."""

    status: LlrpStatus
    antennas: tuple[AntennaProperties, ...] = ()
    msg_id: int = 0
    type: int = GET_READER_CONFIG_RESPONSE

    def body(self) -> bytes:
        return self.status.encode() + b"".join(a.encode() for a in self.antennas)


@dataclass(frozen=True)
class SetReaderConfig:
    """SET_READER_CONFIG: factory reset, keepalive period (None = leave as is), event notifications."""

    reset: bool = False
    keepalive_ms: int | None = None
    events: tuple[tuple[int, bool], ...] = ()
    msg_id: int = 0
    type: int = SET_READER_CONFIG

    def body(self) -> bytes:
        out = bytes([0x80 if self.reset else 0])
        if self.events:
            out += event_spec(self.events)
        if self.keepalive_ms is not None:
            out += keepalive_spec(self.keepalive_ms)
        return out


@dataclass(frozen=True)
class AddRoSpec:
    rospec: RoSpec
    msg_id: int = 0
    type: int = ADD_ROSPEC

    def body(self) -> bytes:
        return self.rospec.encode()


@dataclass(frozen=True)
class AddAccessSpec:
    spec: AccessSpec
    msg_id: int = 0
    type: int = ADD_ACCESSSPEC

    def body(self) -> bytes:
        return self.spec.encode()


@dataclass(frozen=True)
class RoAccessReport:
    tags: tuple[TagReport, ...]
    msg_id: int = 0
    type: int = RO_ACCESS_REPORT

    def body(self) -> bytes:
        return b"".join(t.encode() for t in self.tags)


@dataclass(frozen=True)
class ReaderEventNotification:
    data: ReaderEventData
    msg_id: int = 0
    type: int = READER_EVENT_NOTIFICATION

    def body(self) -> bytes:
        return self.data.encode()


Message = (Empty | SpecRequest | StatusResponse | GetCapabilities | CapabilitiesResponse | GetReaderConfig
           | ReaderConfigResponse | SetReaderConfig | AddRoSpec | AddAccessSpec | RoAccessReport
           | ReaderEventNotification)


def encode(message: Message) -> bytes:
    """The message's bytes on the wire."""
    return encode_frame(message.type, message.msg_id, message.body())


def _empty(msg_type: int, f: Fields, msg_id: int) -> Empty:
    return Empty(msg_type, msg_id)


def _spec_request(msg_type: int, f: Fields, msg_id: int) -> SpecRequest:
    return SpecRequest(msg_type, f.one("I", "ROSpecID/AccessSpecID"), msg_id)


def _status_response(msg_type: int, f: Fields, msg_id: int) -> StatusResponse:
    return StatusResponse(msg_type, LlrpStatus.decode(need(f.params(), LLRP_STATUS, "LLRPStatus",
                                                           message_name(msg_type))), msg_id)


def _capabilities(f: Fields, msg_id: int) -> CapabilitiesResponse:
    params = f.params()
    status = LlrpStatus.decode(need(params, LLRP_STATUS, "LLRPStatus", "GET_READER_CAPABILITIES_RESPONSE"))
    general = find(params, GENERAL_DEVICE_CAPABILITIES)
    return CapabilitiesResponse(status, None if general is None else DeviceCapabilities.decode(general), msg_id)


def _get_config(f: Fields, msg_id: int) -> GetReaderConfig:
    antenna, requested, _gpi, _gpo = f.take("HBHH", "AntennaID..GPOPortNum")
    return GetReaderConfig(requested, antenna, msg_id)


def _config(f: Fields, msg_id: int) -> ReaderConfigResponse:
    params = f.params()
    status = LlrpStatus.decode(need(params, LLRP_STATUS, "LLRPStatus", "GET_READER_CONFIG_RESPONSE"))
    return ReaderConfigResponse(status, tuple(AntennaProperties.decode(p) for p in params
                                              if p.type == ANTENNA_PROPERTIES and not p.tv), msg_id)


def _set_config(f: Fields, msg_id: int) -> SetReaderConfig:
    reset = bool(f.one("B", "ResetToFactoryDefault") & 0x80)
    params = f.params()
    keepalive, events = find(params, KEEPALIVE_SPEC), find(params, READER_EVENT_NOTIFICATION_SPEC)
    return SetReaderConfig(reset, None if keepalive is None else decode_keepalive_ms(keepalive),
                           () if events is None else decode_event_spec(events), msg_id)


def _report(f: Fields, msg_id: int) -> RoAccessReport:
    return RoAccessReport(tuple(TagReport.decode(p) for p in f.params() if p.type == TAG_REPORT_DATA and not p.tv),
                          msg_id)


def _event(f: Fields, msg_id: int) -> ReaderEventNotification:
    data = need(f.params(), READER_EVENT_NOTIFICATION_DATA, "ReaderEventNotificationData", "READER_EVENT_NOTIFICATION")
    return ReaderEventNotification(ReaderEventData.decode(data), msg_id)


BODY_DECODERS: dict[int, Callable[[Fields, int], Message]] = {
    GET_READER_CAPABILITIES: lambda f, i: GetCapabilities(f.one("B", "RequestedData"), i),
    GET_READER_CAPABILITIES_RESPONSE: _capabilities,
    GET_READER_CONFIG: _get_config,
    GET_READER_CONFIG_RESPONSE: _config,
    SET_READER_CONFIG: _set_config,
    ADD_ROSPEC: lambda f, i: AddRoSpec(RoSpec.decode(need(f.params(), ROSPEC, "ROSpec", "ADD_ROSPEC")), i),
    ADD_ACCESSSPEC: lambda f, i: AddAccessSpec(
        AccessSpec.decode(need(f.params(), ACCESS_SPEC, "AccessSpec", "ADD_ACCESSSPEC")), i),
    RO_ACCESS_REPORT: _report,
    READER_EVENT_NOTIFICATION: _event,
    **{t: partial(_empty, t) for t in EMPTY},
    **{t: partial(_spec_request, t) for t in SPEC_REQUESTS},
    **{t: partial(_status_response, t) for t in STATUS_ONLY},
}


def decode_message(frame: Frame) -> Message:
    """The message in a frame, or LlrpError naming the message, field and values."""
    decoder = BODY_DECODERS.get(frame.type)
    if decoder is None:
        raise LlrpError(f"LLRP message type {frame.type} (id {frame.msg_id}) is not one this client knows",
                        reason="unknown_message")
    return decoder(Fields(frame.body, f"{message_name(frame.type)} id {frame.msg_id}"), frame.msg_id)


@dataclass
class LlrpDecoder:
    """Feed any chunks of a reader's stream; get the messages; rejects are counted by reason, never raised.

    A malformed message body is skipped (the next message starts where its length says). A broken
    header sets `broken`: the connection must be dropped, since nothing after it can be framed.
    """

    stats: DecoderStats = field(default_factory=DecoderStats)
    last_error: str = ""
    last_reject: tuple[str, bytes] | None = None
    _framer: Framer = field(default_factory=Framer)

    @property
    def broken(self) -> FramingError | None:
        return self._framer.broken

    def restart(self) -> None:
        """A new connection: forget the old stream's partial frame and broken header, keep the counts."""
        self._framer = Framer()

    def feed(self, data: bytes) -> list[Message]:
        """Consume bytes; returns the messages completed."""
        out: list[Message] = []
        if self.broken is not None:
            return out
        self._framer.feed(data)
        while True:
            try:
                frame = self._framer.next_frame()
            except FramingError as exc:
                self.stats.framing_errors += 1
                self.reject(exc, data[:16])
                return out
            if frame is None:
                return out
            try:
                out.append(decode_message(frame))
            except LlrpError as exc:
                self.reject(exc, frame.body[:16])
                continue
            self.stats.frames += 1

    def reject(self, exc: LlrpError, sample: bytes) -> None:
        """Count a reject by its reason (also one found after decoding, in a field only the client reads)."""
        self.stats.rejects[exc.reason] = self.stats.rejects.get(exc.reason, 0) + 1
        self.last_error = str(exc)
        self.last_reject = (exc.reason, sample)
