"""Signed hub -> station commands: wire format, Ed25519 signing and verification, MQTT link.

Topics (MQTT v5, QoS 1; `cmd` itself carries the sync engine's unsigned `resend` requests):

    cpe/v1/{s}/cmd/signed   hub -> station, Envelope: {"v":1, "payload": "<command JSON>", "sig": "<base64>"}
    cpe/v1/{s}/cmd/result   station -> hub, CommandResult JSON

The signature covers the UTF-8 bytes of `payload` exactly as sent, so nothing is re-serialised
before checking. A command names its station, an expiry and a random nonce; the station refuses
a bad signature, another station's command, an expired or not-yet-valid one and a nonce it has
seen before (edge/commands.py keeps the nonces). Both sides import this module.

    CommandError (SyncError)
    ├── CommandFormatError      the envelope or command does not parse
    └── CommandSignatureError   the signature does not verify against the pinned key
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Callable, Literal, TypeVar

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.config import BrokerConfig
from central_sync.errors import SyncError
from central_sync.mqtt import attempt_after, backoff_delay, connect_properties, new_client
from central_sync.protocol import ROOT, SHA256_HEX, STATION_ID

T = TypeVar("T")

log = structlog.get_logger("central_sync.commands")

CMD_LEAF = "cmd/signed"
RESULT_LEAF = "cmd/result"
OPS = ("set_thresholds", "set_tip_rate", "request_diag", "switch_model")
Op = Literal["set_thresholds", "set_tip_rate", "request_diag", "switch_model"]
Outcome = Literal["applied", "rejected", "failed"]
REASONS = ("applied", "bad_signature", "bad_format", "wrong_station", "expired", "not_yet_valid", "ttl_too_long",
           "replayed", "unsupported", "no_key", "handler_failed", "handler_timeout", "queue_full",
           "report")  # CommandResult.reason codes; `report`: a second result carrying a diagnostic run's report
MAX_PAYLOAD = 16 * 1024
MAX_ENVELOPE = 2 * MAX_PAYLOAD + 1024  # the payload JSON-escaped (a quote doubles) with the signature: larger is not read
# The highest class threshold a command may set. A threshold of 1.0 (or just under it) lets no detection of
# the class through, so a command could turn detection off at a station: refused at the hub and at the station.
# A class is set that high only on site, in the station's `[model] thresholds`.
MAX_THRESHOLD = 0.99


class CommandError(SyncError):
    """A signed command that cannot be accepted; `code` is the stable reason code."""

    code = "invalid"


class CommandFormatError(CommandError):
    """A command or its arguments not well formed. For arguments (check_args) also the first problem as data, for
    a sentence in the reader's language: `problem` (pydantic's error type: missing, less_than_equal, ...), `field`
    (rate, thresholds.knife), `value` (the value refused, "" when none or too long to show) and `limit` (the bound a
    range or size error names, else "")."""

    code = "bad_format"

    def __init__(self, message: str, problem: str = "", field: str = "", value: str = "", limit: str = "") -> None:
        super().__init__(message)
        self.problem, self.field, self.value, self.limit = problem, field, value, limit


class CommandSignatureError(CommandError):
    code = "bad_signature"


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Score = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]  # a number: true was read as 1.0
Threshold = Annotated[float, Field(gt=0.0, le=MAX_THRESHOLD, strict=True)]
# Epoch seconds. NaN compares false with everything: a command expiring at NaN passed every freshness check
# and then failed the station's nonce record (NOT NULL), ending with no result at all
Time = Annotated[float, Field(allow_inf_nan=False)]


class Command(_Wire):
    """One instruction to one station; `args` depend on `op` (see `check_args`)."""

    v: Literal[1] = 1
    id: str = Field(min_length=8, max_length=64)
    station: str = Field(pattern=STATION_ID.pattern)
    op: Op
    args: dict[str, object] = Field(default_factory=dict)
    issued_at: Time
    expires_at: Time
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    issuer: str = Field(min_length=1, max_length=64)


class Envelope(_Wire):
    v: Literal[1] = 1
    payload: str = Field(max_length=MAX_PAYLOAD)
    sig: str = Field(max_length=128)


class CommandResult(_Wire):
    """What the station did with a command; `reason` is a stable code translated at display. A field a newer
    station adds is ignored, not refused (the command was carried out; its result must not read as lost).

    `settings`: the station's effective settings after the command (thresholds, TIP rate, model,
    last applied command; edge.commands.CommandProcessor.settings). A `request_diag` is answered
    twice: at once (the run started), then with reason `report` and the run's `report`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    id: str
    station: str
    op: str
    outcome: Outcome
    reason: str
    detail: str = ""
    at: float
    settings: dict[str, Any] | None = None
    report: dict[str, Any] | None = None


class _Thresholds(_Wire):
    thresholds: dict[Annotated[str, Field(min_length=1, max_length=64)], Threshold] = Field(min_length=1, max_length=100)


class _TipRate(_Wire):
    rate: Score


class _Diag(_Wire):
    plan: Literal["quick", "full"] = "quick"
    lang: Literal["en", "zh-Hans", "zh-Hant"] = "en"  # the report's language: the requester's


class _Model(_Wire):
    sha256: str = Field(pattern=SHA256_HEX.pattern)


ARGS: dict[str, type[_Wire]] = {"set_thresholds": _Thresholds, "set_tip_rate": _TipRate,
                                "request_diag": _Diag, "switch_model": _Model}


def check_args(op: str, args: dict) -> dict:
    """The validated arguments of `op`; CommandFormatError names the first problem."""
    try:
        return ARGS[op].model_validate(args).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        value = err.get("input") if "input" in err else ""
        shown = isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 64)
        limit = next((v for k, v in (err.get("ctx") or {}).items() if k in _LIMITS), "")
        raise CommandFormatError(f"arguments of {op} are invalid: {_first(exc)}", err["type"],
                                 ".".join(str(p) for p in err.get("loc", ())), str(value) if shown else "",
                                 str(limit)) from exc


def cmd_topic(station: str) -> str:
    return f"{ROOT}/{station}/{CMD_LEAF}"


def result_topic(station: str) -> str:
    return f"{ROOT}/{station}/{RESULT_LEAF}"


def new_command(station: str, op: Op, args: dict, issuer: str, ttl_s: float = 300.0,
                now: float | None = None) -> Command:
    """A fresh command with a random id and nonce, valid for `ttl_s` seconds."""
    now = time.time() if now is None else now
    return Command(id=uuid.uuid4().hex, station=station, op=op, args=check_args(op, args), issued_at=now,
                   expires_at=now + ttl_s, nonce=secrets.token_hex(16), issuer=issuer)


def sign(key: Ed25519PrivateKey, cmd: Command) -> bytes:
    """The envelope bytes to publish."""
    payload = cmd.model_dump_json()
    sig = base64.b64encode(key.sign(payload.encode())).decode()
    return Envelope(payload=payload, sig=sig).model_dump_json().encode()


def verify(key: Ed25519PublicKey, data: bytes) -> Command:
    """The command inside `data` if its signature verifies; CommandError otherwise, in one sentence (it is the
    detail of the station's result and of its record: pydantic's report ran over several lines with the input)."""
    if len(data) > MAX_ENVELOPE:
        raise CommandFormatError(f"command envelope of {len(data)} bytes is larger than the {MAX_ENVELOPE} bytes"
                                 f" a command may take; it was not read")
    try:
        env = Envelope.model_validate_json(data)
    except ValidationError as exc:
        raise CommandFormatError(f"command envelope of {len(data)} bytes is invalid: {_first(exc, 'envelope')}") from exc
    try:
        sig = base64.b64decode(env.sig, validate=True)
    except ValueError as exc:
        raise CommandFormatError(f"command envelope of {len(data)} bytes has a signature that is not base64"
                                 f" ({len(env.sig)} characters)") from exc
    try:
        key.verify(sig, env.payload.encode())
    except InvalidSignature as exc:
        raise CommandSignatureError(f"command signature of {len(data)} bytes does not verify against the pinned key") from exc
    try:
        cmd = Command.model_validate_json(env.payload)
    except ValidationError as exc:
        raise CommandFormatError(f"signed command is invalid: {_first(exc)}") from exc
    check_args(cmd.op, cmd.args)
    return cmd


def peek(data: bytes) -> dict:
    """Best-effort id/station/op of an unverified envelope, only for reporting a rejection."""
    try:
        inner = json.loads(json.loads(data)["payload"])
        return {k: str(inner.get(k, "")) for k in ("id", "station", "op")}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {"id": "", "station": "", "op": ""}


# ---- keys -----------------------------------------------------------------------------------
def generate_keypair(private_path: Path, public_path: Path) -> Ed25519PrivateKey:
    """Write a new PEM key pair (private key mode 0600) and return the private key."""
    key = Ed25519PrivateKey.generate()
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = _load(path, lambda b: serialization.load_pem_private_key(b, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise CommandError(f"key file {path} holds no Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = _load(path, serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise CommandError(f"key file {path} holds no Ed25519 public key")
    return key


def _load(path: Path, fn: Callable[[bytes], T]) -> T:
    try:
        return fn(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise CommandError(f"key file {path} cannot be read: {exc}") from exc


# ---- transport ------------------------------------------------------------------------------
class CommandLink:
    """A small MQTT v5 client on its own thread: subscribes to `topics`, hands each message to
    `on_message(topic, payload)` (called on paho's thread), publishes QoS 1 on request.

        async with CommandLink(broker, "hub-cmd-1", ["cpe/v1/+/cmd/result"], handler, link="cr") as link:
            link.publish(cmd_topic("gate-1"), sign(key, cmd))
    """

    def __init__(self, cfg: BrokerConfig, client_id: str, topics: list[str],
                 on_message: Callable[[str, bytes], None], link: str = "cmd",
                 on_ready: Callable[[], None] | None = None) -> None:
        """link: the connection's name in the broker account `{username}.{link}` ("cmd" on a
        station, "cr" for a hub's control room); `client_id` is used only without a user name.
        `on_ready`: called on paho's thread each time the subscriptions are in place (at start and after
        every reconnect): what was published to them before could not arrive."""
        self.cfg, self.client_id, self.topics, self.on_message = cfg, client_id, topics, on_message
        self.link, self.on_ready = link, on_ready
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._client: mqtt.Client | None = None
        self._attempt = 0                     # the back-off's attempt (central_sync.mqtt.attempt_after)
        self._up_since: float | None = None   # time.monotonic() when the session under way was accepted

    async def __aenter__(self) -> "CommandLink":
        client = self._client = new_client(self.cfg, self.client_id, 20, self.link)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = lambda c, u, mid, codes, props: self._subscribed()
        client.on_message = lambda c, u, msg: self._deliver(msg.topic, bytes(msg.payload))
        client.reconnect_delay_set(int(max(1, self.cfg.reconnect_min_s)), int(max(1, self.cfg.reconnect_max_s)))
        await asyncio.to_thread(client.connect_async, self.cfg.host, self.cfg.port, self.cfg.keepalive_s,
                                clean_start=True, properties=connect_properties(100))
        client.loop_start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    async def ready(self, timeout: float = 10.0) -> None:
        """Wait until connected and subscribed (tests, start-up)."""
        async with asyncio.timeout(timeout):
            while not (self.connected.is_set() and (self.subscribed.is_set() or not self.topics)):
                await asyncio.sleep(0.02)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Thread-safe QoS 1 publish; paho queues it while the link is down."""
        if self._client is None:
            raise CommandError(f"command link {self.client_id} is not running; cannot publish to {topic}")
        self._client.publish(topic, payload, qos=1, retain=retain)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, code: ReasonCode,
                    props: Properties | None) -> None:
        if code.is_failure:
            log.error("commands.link_refused", client=self.client_id, code=str(code))
            return
        self.connected.set()
        self._up_since = time.monotonic()
        if self.topics:
            client.subscribe([(t, 1) for t in self.topics])
        log.info("commands.link_up", client=self.client_id, broker=f"{self.cfg.host}:{self.cfg.port}")

    def _subscribed(self) -> None:
        self.subscribed.set()
        if self.on_ready is not None:
            self.on_ready()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, code: ReasonCode,
                       props: Properties | None) -> None:
        self.connected.clear()
        self.subscribed.clear()
        # paho waits its min delay again after any accepted session: a session the broker soon ends (another
        # client of the same name taking it over) would be retried every second for ever. The next wait is
        # the back-off's, reset only by a session kept as long as the longest wait (as the hub's links)
        self._attempt = attempt_after(self._attempt, self._up_since, self.cfg)
        self._up_since = None
        wait = backoff_delay(self._attempt, max(1.0, self.cfg.reconnect_min_s), max(1.0, self.cfg.reconnect_max_s))
        client.reconnect_delay_set(wait, max(wait, self.cfg.reconnect_max_s))  # type: ignore[arg-type]
        log.warning("commands.link_lost", client=self.client_id, code=str(code), reconnect_in_s=round(wait, 1))

    def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            self.on_message(topic, payload)
        except Exception as exc:  # top of paho's thread: one bad message must not stop the link
            log.error("commands.handler_failed", client=self.client_id, topic=topic, error=repr(exc))


_LIMITS = ("gt", "ge", "lt", "le", "min_length", "max_length")  # the bound a range or size error names (its ctx)


def _first(exc: ValidationError, whole: str = "payload") -> str:
    """The first problem in one line, with the value refused when it is a number or a short text; `whole`
    names what was read when the problem is not in one field (JSON that does not parse)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or whole
    value = err.get("input")
    shown = isinstance(value, (int, float, type(None))) or (isinstance(value, str) and len(value) <= 64)
    return f"{where}: {err.get('msg', 'invalid')}" + (f" (got {value!r})" if shown and "input" in err else "")
