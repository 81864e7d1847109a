"""Modbus TCP/RTU PLC driver: one poll task reads inputs, writes the host heartbeat, emits events.

Link model: a read that gets no answer within timeout_ms (one retry) or a PLC heartbeat that has
not changed for heartbeat_stale_ms puts the link down (`LinkChanged(ok=False)`, state
`link_ok=False`, `items_to_manual=True`). The first good poll afterwards writes the safe requests
(belt stop, no X-ray permit, divert to manual) before the link is reported up again; nothing is
restarted by the driver.
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

from drivers.errors import DeviceRefused, LinkLost, ReadbackMismatch
from drivers.plc.config import LIGHT_CODES, PlcConfig, Point
from drivers.plc.state import BeltMoved, EyeEdge, Light, LinkChanged, PlcEvent, PlcState

log = structlog.get_logger()

LATCHED = frozenset({"belt_run_request", "xray_permit_request", "barrier_open_request"})
SAFE_REQUESTS = {"belt_run_request": 0, "xray_permit_request": 0, "divert_manual_request": 1}
LIGHT_NAMES = {v: k for k, v in LIGHT_CODES.items()}
POLLED_TABLES = ("discrete", "input")
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
        self._encoder = (None, 0.0)  # (last raw counts, unwrapped metres)
        self._hb = (-1, 0.0)  # (last PLC heartbeat value, time it changed)
        self._host_hb = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.sim: Any = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        self.frames.append((b">" if sending else b"<") + data)
        return data

    async def __aenter__(self) -> Self:
        await self.client.connect()
        self._task = asyncio.create_task(self._poll_loop(), name=f"plc-poll-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._task:
            # pymodbus's connect() can swallow a cancellation: repeat it until the task has ended
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.5)
        if self._link_ok:
            try:
                await self._write_safe()
            except (LinkLost, DeviceRefused) as e:
                log.warning("plc.safe_write_failed", plc=self.name, error=str(e))
        self.client.close()

    # ---- low level -------------------------------------------------------------------------
    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """One Modbus request; no answer -> LinkLost, exception response -> DeviceRefused."""
        try:
            rr = await fn(*args, device_id=self.cfg.unit_id, **kw)
        except ModbusException as e:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from e
            if isinstance(e, ConnectionException):
                raise LinkLost(f"PLC {self.name} at {self.where} is not connected (refused or closed); "
                               f"{what} not sent", device=self.name, last_frames=tuple(self.frames)) from e
            raise LinkLost(
                f"PLC {self.name} at {self.where} did not answer {what} within "
                f"{self.cfg.timeout_ms} ms ({self.cfg.retries} retry)",
                device=self.name, last_frames=tuple(self.frames)) from e
        if rr.isError():
            raise DeviceRefused(
                f"PLC {self.name} at {self.where} refused {what} with exception code {rr.exception_code}",
                device=self.name, last_frames=tuple(self.frames))
        return rr

    async def _write(self, name: str, value: int) -> None:
        pt = self.cfg.registers[name]
        what = f"write of {pt.table} {pt.address} ({name}) = {value}"
        if pt.table == "coil":
            await self._call(what, self.client.write_coil, pt.address, bool(value))
        elif pt.table == "holding":
            await self._call(what, self.client.write_register, pt.address, value & 0xFFFF)
        else:
            raise DeviceRefused(f"PLC {self.name} point {name} is a read-only {pt.table}", device=self.name)

    async def _read_table(self, table: str) -> dict[str, int]:
        pts = {n: p for n, p in self.cfg.registers.items() if p.table == table}
        if not pts:
            return {}
        lo = min(p.address for p in pts.values())
        hi = max(p.address + p.words for p in pts.values())
        rr = await self._call(f"read of {table} {lo}..{hi - 1}", getattr(self.client, READERS[table]),
                              lo, count=hi - lo)
        if table in ("coil", "discrete"):
            return {n: int(rr.bits[p.address - lo]) for n, p in pts.items()}
        return {n: decode_words(rr.registers, p, lo) for n, p in pts.items()}

    async def read_points(self, table: str) -> dict[str, int]:
        """Raw values of every mapped point of one table (diagnostics and tests)."""
        return await self._read_table(table)

    async def _write_safe(self) -> None:
        for name, value in SAFE_REQUESTS.items():
            if name in self.cfg.registers:
                await self._write(name, value)

    # ---- poll loop -------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_hb = 0.0
        while not self._closing:
            start = loop.time()
            try:
                if start >= next_hb:
                    self._host_hb = (self._host_hb + 1) & 0xFFFF
                    await self._write("host_heartbeat", self._host_hb)
                    next_hb = start + self.cfg.heartbeat_period_ms / 1000
                values: dict[str, int] = {}
                for table in POLLED_TABLES:
                    values.update(await self._read_table(table))
                await self._on_sample(values, loop.time())
            except (LinkLost, DeviceRefused) as e:
                await self._link_down(str(e), loop.time())
                await asyncio.sleep(self.cfg.reconnect_delay_ms / 1000)
                if not self.client.connected:
                    self.client.close()
                    await self.client.connect()
                continue
            await asyncio.sleep(max(0.0, self.cfg.poll_period_ms / 1000 - (loop.time() - start)))

    async def _on_sample(self, values: dict[str, int], t: float) -> None:
        hb_val, hb_t = self._hb
        if values["plc_heartbeat"] != hb_val:
            self._hb = hb_val, hb_t = values["plc_heartbeat"], t
        age = t - hb_t
        if age > self.cfg.heartbeat_stale_ms / 1000:
            was_up = self._link_ok
            await self._link_down(f"PLC {self.name} heartbeat stale for {age * 1000:.0f} ms", t)
            if was_up:
                await self._write_safe()  # it still answers: make the requests safe at once
            return
        if not self._link_ok:
            await self._write_safe()
            self._link_ok, self._reason = True, ""
            log.info("plc.link_restored", plc=self.name, where=self.where)
            self._emit(LinkChanged(True, "", t))
        await self._publish(values, t, age)

    async def _link_down(self, reason: str, t: float) -> None:
        if self._link_ok or not self._reason:
            log.warning("plc.link_lost", plc=self.name, reason=reason)
            self._emit(LinkChanged(False, reason, t))
        self._link_ok, self._reason = False, reason
        await self._publish(self._values, t, t - self._hb[1])

    async def _publish(self, values: dict[str, int], t: float, age: float) -> None:
        prev = self._state
        self._values = values
        self._update_encoder(values.get("encoder"))
        st = self._make_state(values, t, age, prev.seq + 1 if prev else 1)
        self._state = st
        if prev is not None and st.link_ok:
            self._emit_changes(prev, st)
        async with self._cond:
            self._cond.notify_all()

    def _update_encoder(self, raw: int | None) -> None:
        last, metres = self._encoder
        if raw is None or not self._link_ok:
            return
        delta = 0 if last is None else (raw - last) % (1 << 32)
        self._encoder = raw, metres + delta / self.cfg.encoder_counts_per_m

    def _make_state(self, v: dict[str, int], t: float, age: float, seq: int) -> PlcState:
        ok = self._link_ok
        return PlcState(
            link_ok=ok, link_reason=self._reason,
            estop_ok=ok and bool(v.get("estop_ok")), interlocks_ok=ok and bool(v.get("interlocks_ok")),
            belt_running=bool(v.get("belt_running")), encoder_m=self._encoder[1],
            photo_eyes=tuple(bool(v.get(e)) for e in self.cfg.eyes),
            divert_to_manual=bool(v.get("divert_manual")), barrier_open=bool(v.get("barrier_open")),
            light=LIGHT_NAMES.get(v.get("light", 0), "red"),  # type: ignore[arg-type]
            xray_permit=bool(v.get("xray_permit")), plc_heartbeat=v.get("plc_heartbeat", 0),
            heartbeat_age_s=age, items_to_manual=not ok, t=t, seq=seq)

    def _emit_changes(self, prev: PlcState, st: PlcState) -> None:
        for i, (a, b) in enumerate(zip(prev.photo_eyes, st.photo_eyes)):
            if a != b:
                self._emit(EyeEdge(i, self.cfg.eyes[i], b, st.t, st.encoder_m))
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
            raise LinkLost(f"PLC {self.name} link is down ({self._reason}); {req}={value} not sent",
                           device=self.name)
        if req in LATCHED and value:
            await self._write(req, 0)
        await self._write(req, value)
        await self._confirm(f"{req}={value}", feedback, value_fb)

    async def _confirm(self, req: str, feedback: str, value: int, written: float | None = None) -> None:
        after = self._state.seq if self._state else 0

        def ok() -> bool:  # a poll that started after the write shows the feedback
            return bool(self._state and self._state.seq > after + 1 and self._values.get(feedback) == value)

        try:
            async with asyncio.timeout(self.cfg.readback_timeout_ms / 1000), self._cond:
                await self._cond.wait_for(ok)
        except TimeoutError:
            v = self._values
            raise ReadbackMismatch(
                f"PLC {self.name} requested {req} but {feedback} read back {v.get(feedback)} "
                f"after {self.cfg.readback_timeout_ms} ms (estop_ok={v.get('estop_ok')}, "
                f"interlocks_ok={v.get('interlocks_ok')}, link_ok={self._link_ok})",
                device=self.name, last_frames=tuple(self.frames)) from None

    async def request_belt(self, run: bool) -> None:
        """Ask the belt to run or stop; confirmed by belt_running."""
        await self._request("belt_run_request", "belt_running", int(run))

    async def request_divert(self, to_manual: bool) -> None:
        """Move the divert gate; confirmed by the gate's end-position feedback."""
        await self._request("divert_manual_request", "divert_manual", int(to_manual), off="divert_pass")

    async def request_barrier(self, open: bool) -> None:
        """Open or close the barrier; confirmed by barrier_open."""
        await self._request("barrier_open_request", "barrier_open", int(open), off="barrier_closed")

    async def request_light(self, color: Light) -> None:
        """Set the traffic light; confirmed by the light feedback register."""
        await self._request("light_request", "light", LIGHT_CODES[color])

    async def request_xray_permit(self, on: bool) -> None:
        """Grant or withdraw the software X-ray permit; confirmed by xray_permit."""
        await self._request("xray_permit_request", "xray_permit", int(on))

    async def send_divert(self, to_manual: bool) -> Awaitable[None]:
        """Write the divert request and return once the PLC acknowledged the write, without waiting for
        the read-back; await the returned confirmation (the gate's end-position feedback) apart, so that
        the next command need not queue behind it."""
        req, value = "divert_manual_request", int(to_manual)
        if not self._link_ok:
            raise LinkLost(f"PLC {self.name} link is down ({self._reason}); {req}={value} not sent",
                           device=self.name)
        written = asyncio.get_running_loop().time()
        await self._write(req, value)
        return self._confirm(f"{req}={value}", "divert_manual" if to_manual else "divert_pass", 1, written)
