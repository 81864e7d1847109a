"""Modbus TCP/RTU PLC driver: one poll task reads inputs, writes the host heartbeat, emits events.

Link model: a read that gets no answer within timeout_ms (one retry), an exception response, a
malformed answer or a PLC heartbeat that has not changed for heartbeat_stale_ms puts the link down
(`LinkChanged(ok=False)`, state `link_ok=False`, `items_to_manual=True`), with a reason that says
which. The first good poll afterwards writes the model's safe state (drivers.plc.config.SAFE_STATES)
before the link is reported up again; nothing is restarted by the driver. A poll task
that fails unexpectedly leaves the link down for good (`plc.poll_failed`).

A poll reads every point the PLC writes (docs/plc-register-map.md) in runs of mapped addresses;
its measured duration is `cycle_s`. A request is confirmed by a poll that started after the write
was answered; it fails only when readback_timeout_ms has passed and two such polls disagreed.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self

import structlog

from drivers.fanout import Fanout
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from drivers.errors import DeviceRefused, DriverError, LinkLost, ProtocolError, ReadbackMismatch
from drivers.plc.config import BIT_TABLES, LIGHT_CODES, REQUEST_POINTS, SAFE_STATES, PlcConfig, Point, SafeRequest
from drivers.plc.runs import Run, plan_runs, table_limit
from drivers.plc.state import (BeltMoved, EyeEdge, Light, LinkChanged, LinkFault, PlcEvent, PlcState,
                               SafetyStatus)

log = structlog.get_logger()

LATCHED = frozenset({"belt_run_request", "xray_permit_request", "barrier_open_request", "search_bay_request"})
# Each request's read-back: the feedback that shows it, and the one that shows it off (when not the same).
FEEDBACK: dict[str, tuple[str, str]] = {"belt_run_request": ("belt_running", ""),
                                        "divert_manual_request": ("divert_manual", "divert_pass"),
                                        "barrier_open_request": ("barrier_open", "barrier_closed"),
                                        "search_bay_request": ("search_bay_open", "search_bay_closed"),
                                        "light_request": ("light", ""),
                                        "entry_light_request": ("entry_light", ""),
                                        "xray_permit_request": ("xray_permit", "")}
LIGHT_NAMES = {v: k for k, v in LIGHT_CODES.items()}
POLLED_TABLES = ("discrete", "input", "holding", "coil")
POLL_ERRORS = (LinkLost, DeviceRefused, ProtocolError)
FAULTS: dict[type[Exception], LinkFault] = {LinkLost: "no_answer", DeviceRefused: "refused",
                                            ProtocolError: "protocol"}
# Polls after a write that must complete before a request may be declared failed: the poll in
# progress when the write was answered, then two that started after it.
CONFIRM_POLLS = 3
EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "server device failure", 5: "acknowledge", 6: "server device busy",
                   8: "memory parity error", 10: "gateway path unavailable",
                   11: "gateway target device failed to respond"}
READERS = {"coil": "read_coils", "discrete": "read_discrete_inputs",
           "holding": "read_holding_registers", "input": "read_input_registers"}
EVENT_QUEUE = 4096


def make_client(cfg: PlcConfig, trace: Callable[[bool, bytes], bytes]) -> Any:
    """The pymodbus client for the configured transport, with short timeouts and one retry."""
    # reconnect_delay=0 turns pymodbus's own reconnect off: the poll loop reconnects (it must
    # also connect when the PLC was absent at start, which pymodbus does not retry).
    common: dict[str, Any] = {"timeout": cfg.timeout_ms / 1000, "retries": cfg.retries,
                              "trace_packet": trace, "reconnect_delay": 0}
    if cfg.kind == "modbus-rtu":
        return AsyncModbusSerialClient(cfg.serial_port, framer=FramerType.RTU,
                                       baudrate=cfg.baudrate, **common)
    return AsyncModbusTcpClient(cfg.host, port=cfg.port, **common)


def exception_name(code: int) -> str:
    """The Modbus specification's name of an exception code."""
    return EXCEPTION_NAMES.get(code, "unknown exception")


def poll_runs(cfg: PlcConfig) -> tuple[Run, ...]:
    """The reads of one poll: every point the PLC writes (requests are the host's own)."""
    polled = {n: p for n, p in cfg.registers.items() if n not in REQUEST_POINTS}
    return tuple(r for t in POLLED_TABLES for r in plan_runs(polled, t, table_limit(cfg, t)))


def decode_words(words: list[int], pt: Point, base: int) -> int:
    """A point's value from a block of registers read from address `base` (high word first)."""
    value = 0
    for w in words[pt.address - base: pt.address - base + pt.words]:
        value = value << 16 | w
    return value


class ModbusPlc:
    """Station PLC over Modbus; async context manager running the poll task."""

    def __init__(self, cfg: PlcConfig, name: str) -> None:
        self.cfg, self.name = cfg, name
        where = cfg.serial_port if cfg.kind == "modbus-rtu" else f"{cfg.host}:{cfg.port}"
        self.where = where
        self.frames: collections.deque[bytes] = collections.deque(maxlen=8)
        self.client = make_client(cfg, self._trace)
        self._events: Fanout[PlcEvent] = Fanout(name, "plc.event_dropped", EVENT_QUEUE)
        self._cond = asyncio.Condition()
        self._values: dict[str, int] = {}
        self._state: PlcState | None = None
        self._link_ok = False
        self._reason = "not connected"
        self._fault: LinkFault = "no_answer"
        self._refusal_code: int | None = None  # the exception code of the refusal that put the link down
        self._encoder: tuple[int | None, float] = (None, 0.0)  # (last raw counts, unwrapped metres)
        # (last PLC heartbeat value, the answer that first showed it); None: none read since the link was lost
        self._hb: tuple[int | None, float] = (None, 0.0)
        self._hb_moved = False  # the heartbeat changed since the link went down: the PLC's program runs
        self._host_hb = 0
        self._next_hb = 0.0
        self._runs = poll_runs(cfg)
        self._hb_run = next(r for r in self._runs if any(name == "plc_heartbeat" for name, _ in r.points))
        self._cycle_s = 0.0
        self._good_polls = 0  # polls that read every point
        self._sample_start = 0.0  # when the poll behind `_values` started
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.sim: Any = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        self.frames.append((b">" if sending else b"<") + data)
        return data

    async def __aenter__(self) -> Self:
        await self.client.connect()
        self._task = asyncio.create_task(self._supervise_poll(), name=f"plc-poll-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._task:
            # pymodbus's connect() can swallow a cancellation: repeat it until the task has ended
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.5)
        if self._link_ok:
            await self._try_write_safe()
        self.client.close()

    @property
    def cycle_s(self) -> float:
        """Measured duration of the last complete poll (0 before the first)."""
        return self._cycle_s

    # ---- low level -------------------------------------------------------------------------
    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """One Modbus request; no answer -> LinkLost, exception response -> DeviceRefused. A cancellation is never
        lost in it: pymodbus turns one into a ModbusException, and Python 3.11's asyncio.wait_for inside it returns
        an answer that came in the loop turn of the cancellation, dropping the cancellation (the task, a flow being
        stopped, would run on for ever)."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            rr = await fn(*args, device_id=self.cfg.unit_id, **kw)
        except ModbusException as e:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from e
            if isinstance(e, ConnectionException):
                raise LinkLost(f"PLC {self.name} at {self.where} is not connected (refused or closed); "
                               f"{what} not sent", device=self.name, last_frames=tuple(self.frames)) from e
            raise LinkLost(
                f"PLC {self.name} at {self.where} did not answer {what} within "
                f"{self.cfg.timeout_ms} ms ({self.cfg.retries} retry)",
                device=self.name, last_frames=tuple(self.frames)) from e
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError(f"{what} was answered as the task was cancelled")
        if rr.isError():
            code = rr.exception_code
            raise DeviceRefused(
                f"PLC {self.name} at {self.where} refused {what} with Modbus exception {code:02d} "
                f"({exception_name(code)})", device=self.name, last_frames=tuple(self.frames), code=code)
        return rr

    async def _write(self, name: str, value: int) -> None:
        pt = self.cfg.registers[name]
        if name not in REQUEST_POINTS:
            raise DeviceRefused(f"PLC {self.name} point {name} is written by the PLC, never by the host "
                                f"({pt.table} {pt.address})", device=self.name)
        what = f"write of {pt.table} {pt.address} ({name}) = {value}"
        if pt.table == "coil":
            await self._call(what, self.client.write_coil, pt.address, bool(value))
        elif pt.table == "holding":
            await self._call(what, self.client.write_register, pt.address, value & 0xFFFF)
        else:
            raise DeviceRefused(f"PLC {self.name} point {name} is a read-only {pt.table}", device=self.name)

    async def _read_run(self, run: Run) -> dict[str, int]:
        """One read request; an answer with fewer values than asked for is a ProtocolError."""
        rr = await self._call(f"read of {run.describe()}", getattr(self.client, READERS[run.table]),
                              run.start, count=run.count)
        got = rr.bits if run.table in BIT_TABLES else rr.registers
        if len(got) < run.count:
            raise ProtocolError(f"PLC {self.name} at {self.where} answered read of {run.describe()} with "
                                f"{len(got)} values instead of {run.count}", device=self.name,
                                last_frames=tuple(self.frames))
        if run.table in BIT_TABLES:
            return {n: int(got[p.address - run.start]) for n, p in run.points}
        return {n: decode_words(got, p, run.start) for n, p in run.points}

    async def read_points(self, table: str) -> dict[str, int]:
        """Raw values of every mapped point of one table (diagnostics and tests)."""
        values: dict[str, int] = {}
        for run in plan_runs(self.cfg.registers, table, table_limit(self.cfg, table)):
            values.update(await self._read_run(run))
        return values

    @property
    def safe_state(self) -> tuple[SafeRequest, ...]:
        """The requests of this PLC model's safe state (drivers.plc.config.SAFE_STATES), in order."""
        return SAFE_STATES[self.cfg.model]

    async def _write_safe(self) -> None:
        for req in self.safe_state:
            await self._write(req.point, req.value)

    async def _try_write_safe(self) -> None:
        """Write the safe requests where the PLC still answers; it is safe by its watchdog otherwise."""
        try:
            await self._write_safe()
        except POLL_ERRORS as e:
            log.warning("plc.safe_write_failed", plc=self.name, error=str(e))

    # ---- poll loop -------------------------------------------------------------------------
    async def _supervise_poll(self) -> None:
        """The poll task's supervisor: an unexpected error is a lost link for good, never a silent end."""
        try:
            await self._poll_loop()
        except Exception as e:  # noqa: BLE001 - top-level supervisor of the task
            reason = (f"PLC {self.name} poll task failed with {type(e).__name__} ({e}), so the link stays "
                      f"down until the station software restarts")
            log.error("plc.poll_failed", plc=self.name, error=repr(e), exc_info=True)
            self._closing = True  # nothing may bring the link back up
            await self._link_down(reason, asyncio.get_running_loop().time(), "driver_failed")
            await self._try_write_safe()

    async def _beat_if_due(self) -> None:
        """Write the host heartbeat when its period is up (checked before every read of a poll)."""
        now = asyncio.get_running_loop().time()
        if now >= self._next_hb:
            self._host_hb = (self._host_hb + 1) & 0xFFFF
            await self._write("host_heartbeat", self._host_hb)
            self._next_hb = now + self.cfg.heartbeat_period_ms / 1000

    async def _poll_once(self) -> tuple[dict[str, int], tuple[float, float]]:
        """One poll's values, and when the read that holds the PLC heartbeat was asked for and answered: the
        PLC gave its value between the two (`_on_sample` judges the heartbeat's age on them)."""
        loop = asyncio.get_running_loop()
        values: dict[str, int] = {}
        heard = (loop.time(), loop.time())
        for run in self._runs:
            await self._beat_if_due()
            asked = loop.time()
            values.update(await self._read_run(run))
            if run is self._hb_run:
                heard = (asked, loop.time())
        return values, heard

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            start = loop.time()
            try:
                values, heard = await self._poll_once()
                self._cycle_s = loop.time() - start
                await self._on_sample(values, loop.time(), start, heard)
            except POLL_ERRORS as e:
                self._refusal_code = getattr(e, "code", None)
                self._hb = (None, loop.time())  # a PLC that answers again may have restarted: a new baseline
                await self._link_down(str(e), loop.time(), next(f for c, f in FAULTS.items() if isinstance(e, c)))
                await asyncio.sleep(self.cfg.reconnect_delay_ms / 1000)
                if not self.client.connected:
                    self.client.close()
                    await self.client.connect()
                continue
            await asyncio.sleep(max(0.0, self.cfg.poll_period_ms / 1000 - (loop.time() - start)))

    async def _on_sample(self, values: dict[str, int], t: float, start: float, heard: tuple[float, float]) -> None:
        """A poll's values, read from `start` to t; its heartbeat read was asked for and answered at `heard`.
        The heartbeat's age is what the PLC provably held its value for: from the answer that first showed it
        (the latest the PLC can have changed to it) to the asking of this read (the earliest it can have given
        it again). Timed by the poll's end instead, a host whose own loop stalls while a read is under way (a
        loaded machine) counts the stall as the PLC's and finds a lively heartbeat stale.
        The link comes up only once the heartbeat has changed since it went down: the first value read is a
        baseline, since a PLC can answer Modbus with its program stopped (a CPU in STOP, a comms module up first)."""
        asked, answered = heard
        hb_val, hb_t = self._hb
        if values["plc_heartbeat"] != hb_val:
            self._hb_moved = self._hb_moved or hb_val is not None
            self._hb = hb_val, hb_t = values["plc_heartbeat"], answered
        age = max(0.0, asked - hb_t)
        if age > self.cfg.heartbeat_stale_ms / 1000:
            was_up = self._link_ok
            await self._link_down(f"PLC {self.name} heartbeat stale for {age * 1000:.0f} ms", t, "stale_heartbeat")
            if was_up:
                await self._write_safe()  # it still answers: make the requests safe at once
            return
        if not self._link_ok:
            if not self._hb_moved:
                await self._link_down(f"PLC {self.name} answers but its heartbeat has not changed yet (reads {hb_val})",
                                      t, "stale_heartbeat")
                return
            await self._write_safe()
            self._link_ok, self._reason, self._fault = True, "", ""
            log.info("plc.link_restored", plc=self.name, where=self.where)
            self._emit(LinkChanged(True, "", t))
        self._good_polls += 1
        self._sample_start = start
        await self._publish(values, t, age)

    def _link_down_error(self, what: str) -> DriverError:
        """Why a request cannot go out while the link is down: a PLC that refused stays a refusal."""
        message = f"PLC {self.name} link is down ({self._reason}); {what}"
        if self._fault == "refused":
            return DeviceRefused(message, device=self.name, code=self._refusal_code)
        return LinkLost(message, device=self.name)

    async def _link_down(self, reason: str, t: float, fault: LinkFault) -> None:
        if self._link_ok or not self._reason:
            log.warning("plc.link_lost", plc=self.name, reason=reason)
            self._emit(LinkChanged(False, reason, t))
        self._link_ok, self._reason, self._fault = False, reason, fault
        self._hb_moved = False
        self._encoder = None, self._encoder[1]  # a PLC back after a restart counts from anew: a new baseline
        await self._publish(self._values, t, t - self._hb[1])

    async def _publish(self, values: dict[str, int], t: float, age: float) -> None:
        prev, first = self._state, not self._values
        self._values = values
        self._update_encoder(values.get("encoder"))
        st = self._make_state(values, t, age, prev.seq + 1 if prev else 1)
        self._state = st
        if prev is not None and st.link_ok:
            self._emit_changes(prev, st, first)
        async with self._cond:
            self._cond.notify_all()

    def _update_encoder(self, raw: int | None) -> None:
        last, metres = self._encoder
        if raw is None or not self._link_ok:
            return
        # The difference modulo 2^32, taken as signed: a count back (an encoder dithering at standstill, a belt
        # jogged backwards) is a few millimetres back, not 4,295 km forward; a wrap forward stays a wrap forward.
        delta = 0 if last is None else (raw - last + (1 << 31)) % (1 << 32) - (1 << 31)
        self._encoder = raw, metres + delta / self.cfg.encoder_counts_per_m

    def _make_state(self, v: dict[str, int], t: float, age: float, seq: int) -> PlcState:
        ok = self._link_ok
        word = v.get("safety_status", 0) if ok else 0
        return PlcState(
            link_ok=ok, link_reason=self._reason,
            estop_ok=ok and bool(v.get("estop_ok")), interlocks_ok=ok and bool(v.get("interlocks_ok")),
            belt_running=bool(v.get("belt_running")), encoder_m=self._encoder[1],
            photo_eyes=tuple(bool(v.get(e)) for e in self.cfg.eyes),
            divert_to_manual=bool(v.get("divert_manual")), barrier_open=bool(v.get("barrier_open")),
            light=LIGHT_NAMES.get(v.get("light", 0), "red"),
            xray_permit=bool(v.get("xray_permit")), plc_heartbeat=v.get("plc_heartbeat", 0),
            heartbeat_age_s=age, items_to_manual=not ok, t=t, seq=seq,
            safety_status=word, safety=SafetyStatus.from_word(word), cycle_s=self._cycle_s,
            link_fault=self._fault, search_bay_open=bool(v.get("search_bay_open")),
            entry_light=LIGHT_NAMES.get(v.get("entry_light", 0), "red"))

    def _emit_changes(self, prev: PlcState, st: PlcState, first: bool) -> None:
        """Events for what changed; `first`: `prev` read nothing yet (its eyes read clear only by default)."""
        for i, (a, b) in enumerate(zip(prev.photo_eyes, st.photo_eyes)):
            if a != b:
                self._emit(EyeEdge(i, self.cfg.eyes[i], b, st.t, st.encoder_m, first))
        if st.encoder_m != prev.encoder_m:
            self._emit(BeltMoved(st.encoder_m, st.t))

    def _emit(self, ev: PlcEvent) -> None:
        self._events.emit(ev)

    # ---- interface -------------------------------------------------------------------------
    async def read_state(self) -> PlcState:
        """The latest polled state (waits for the first poll)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._state is not None)
        assert self._state is not None
        return self._state

    async def events(self) -> AsyncIterator[PlcEvent]:
        """Photo-eye edges, belt movement and link changes from now on (bounded queue)."""
        async for event in self._events.subscribe():
            yield event

    async def _request(self, req: str, feedback: str, value: int, *, off: str = "") -> None:
        """Write a request, then wait for `feedback` to read `value` (or `off` to read 1 when value is 0)."""
        if off and not value:
            feedback, value_fb = off, 1
        else:
            value_fb = value
        if not self._link_ok:
            raise self._link_down_error(f"{req}={value} not sent")
        if req in LATCHED and value:
            await self._write(req, 0)
        await self._write(req, value)
        await self._confirm(f"{req}={value}", feedback, value_fb, asyncio.get_running_loop().time())

    def _request_s(self) -> float:
        """Longest one Modbus request may take before it counts as unanswered (with its retries)."""
        return self.cfg.timeout_ms / 1000 * (self.cfg.retries + 1)

    def _worst_poll_s(self) -> float:
        """Longest a poll can take before it reports the link down (every request timing out)."""
        pauses = (self.cfg.poll_period_ms + self.cfg.reconnect_delay_ms) / 1000
        return (len(self._runs) + 1) * self._request_s() + pauses

    def _confirm_bound_s(self) -> float:
        return self.cfg.readback_timeout_ms / 1000 + CONFIRM_POLLS * self._worst_poll_s()

    @property
    def request_bound_s(self) -> float:
        """Longest a `request_*` call can take (two writes, then the read-back) before it raises."""
        return 2 * self._request_s() + self._confirm_bound_s()

    async def _confirm(self, req: str, feedback: str, want: int, written: float) -> None:
        """Wait for a poll started after the write (at `written`) to show `feedback` == `want`.

        It fails only when readback_timeout_ms has passed since the write AND two polls started after
        it read something else, however slow the PLC answers; the link going down ends it at once."""
        loop = asyncio.get_running_loop()
        polls0, window = self._good_polls, self.cfg.readback_timeout_ms / 1000

        def confirmed() -> bool:
            return self._sample_start >= written and self._values.get(feedback) == want

        def settled() -> bool:
            late = loop.time() - written >= window and self._good_polls - polls0 >= CONFIRM_POLLS
            return confirmed() or not self._link_ok or late

        try:  # the bound only guards against a poll that never ends; polls end by their own timeouts
            async with asyncio.timeout(self._confirm_bound_s()), self._cond:
                await self._cond.wait_for(settled)
        except TimeoutError:
            pass  # not confirmed: reported below like any other failure
        if confirmed():
            return
        if not self._link_ok:
            raise LinkLost(f"PLC {self.name} link went down ({self._reason}) before {req} was confirmed "
                           f"by {feedback}", device=self.name, last_frames=tuple(self.frames))
        v = self._values
        raise ReadbackMismatch(
            f"PLC {self.name} requested {req} but {feedback} read back {v.get(feedback)} (expected {want}) "
            f"in {self._good_polls - polls0} polls over {(loop.time() - written) * 1000:.0f} ms after the "
            f"write (poll cycle {self._cycle_s * 1000:.0f} ms; estop_ok={v.get('estop_ok')}, "
            f"interlocks_ok={v.get('interlocks_ok')}, safety_status={v.get('safety_status', 0):#06b})",
            device=self.name, last_frames=tuple(self.frames))

    async def _request_point(self, req: str, value: int) -> None:
        feedback, off = FEEDBACK[req]
        await self._request(req, feedback, value, off=off)

    async def request_safe(self, req: SafeRequest) -> None:
        """Request one point of the safe state; confirmed by its read-back like any request."""
        await self._request_point(req.point, req.value)

    async def request_belt(self, run: bool) -> None:
        """Ask the belt to run or stop; confirmed by belt_running."""
        await self._request_point("belt_run_request", int(run))

    async def request_divert(self, to_manual: bool) -> None:
        """Move the divert gate; confirmed by the gate's end-position feedback."""
        await self._request_point("divert_manual_request", int(to_manual))

    async def request_barrier(self, open: bool) -> None:
        """Open or close the barrier; confirmed by barrier_open (closed: barrier_closed)."""
        await self._request_point("barrier_open_request", int(open))

    async def request_light(self, color: Light) -> None:
        """Set the traffic light; confirmed by the light feedback register."""
        await self._request_point("light_request", LIGHT_CODES[color])

    async def request_search_bay(self, open: bool) -> None:
        """Open or close the search-bay gate (gantry); confirmed by search_bay_open (closed: search_bay_closed)."""
        await self._request_point("search_bay_request", int(open))

    async def request_entry_light(self, color: Light) -> None:
        """Set the entry light before the scan zone (gantry); confirmed by the entry_light feedback register."""
        await self._request_point("entry_light_request", LIGHT_CODES[color])

    async def request_xray_permit(self, on: bool) -> None:
        """Grant or withdraw the software X-ray permit; confirmed by xray_permit."""
        await self._request_point("xray_permit_request", int(on))

    async def send_divert(self, to_manual: bool) -> Awaitable[None]:
        """Write the divert request and return once the PLC acknowledged the write, without waiting for
        the read-back; await the returned confirmation (the gate's end-position feedback) apart, so that
        the next command need not queue behind it."""
        req, value = "divert_manual_request", int(to_manual)
        if not self._link_ok:
            raise self._link_down_error(f"{req}={value} not sent")
        await self._write(req, value)
        written = asyncio.get_running_loop().time()  # only a poll started after the write's answer confirms
        return self._confirm(f"{req}={value}", "divert_manual" if to_manual else "divert_pass", 1, written)
