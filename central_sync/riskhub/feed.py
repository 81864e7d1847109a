"""The customs declaration system's two ways in: an MQTT topic and an HTTP endpoint (docs/risk-authoring.md).

MQTT: JSON (the import's JSON form) on `cpe/customs/v1/declarations`, outside the stations' tree so
no station account can write it; the hub answers each message on `.../declarations/result` with
{"accepted", "refused", "errors"}. HTTP: `POST /api/declarations?format=csv|json` with the bearer
service token of a feeder (a token whose name begins with `customs`, `edge-hub api-token customs-feed`).
Bad rows are refused one sentence each, counted, and the good rows stored, as for an upload.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from typing import Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request

from central_sync.commands import CommandLink
from central_sync.config import BrokerConfig
from central_sync.errors import HubStoreError
from central_sync.hub.api_auth import require_reader
from central_sync.hub.store import HubStore
from central_sync.riskhub.declarations import ImportResult, parse_csv, parse_json, store_declarations

log = structlog.get_logger("central_sync.riskhub")

TOPIC = "cpe/customs/v1/declarations"
RESULT_TOPIC = TOPIC + "/result"
FEEDER_PREFIX = "token:customs"
MAX_BYTES = 20 * 1024 * 1024


def take(store: HubStore, text: str, fmt: str, source: str) -> ImportResult:
    """Parse and store one delivery of declarations; the result names every refused row."""
    result = parse_csv(text) if fmt == "csv" else parse_json(text)
    store_declarations(store, result.good, source)
    log.info("risk.declarations", source=source, accepted=len(result.good), refused=len(result.errors))
    for error in result.errors[:20]:
        log.warning("risk.declaration_refused", source=source, error=error)
    return result


def feed_router(store: HubStore) -> APIRouter:
    """`POST /api/declarations` for the customs declaration system (a feeder's service token)."""
    r = APIRouter()

    @r.post("/api/declarations")
    async def declarations(request: Request, format: Literal["csv", "json"] = "json",
                           caller: str = Depends(require_reader)) -> dict:
        if not caller.startswith(FEEDER_PREFIX):
            raise HTTPException(403, f"{caller} may read the API but not feed declarations; a feeder's token name"
                                     " begins with 'customs'")
        data = await request.body()
        if len(data) > MAX_BYTES:
            raise HTTPException(413, f"the delivery has {len(data)} bytes, more than the {MAX_BYTES} accepted")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HTTPException(422, f"the delivery is not UTF-8 text: {exc}") from exc
        return take(store, text, format, caller).view()
    return r


class DeclarationFeed:
    """Subscribes to TOPIC; paho's thread only enqueues, one worker parses, stores and answers."""

    def __init__(self, broker: BrokerConfig, store: HubStore, client_id: str, queue_max: int = 100) -> None:
        self.store = store
        self.counters: Counter[str] = Counter()
        self.link = CommandLink(broker, client_id, [TOPIC], self._arrived, link="customs")
        self._inbox: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_max)
        self._thread = threading.Thread(target=self._run, name=f"{client_id}-declarations", daemon=True)

    async def __aenter__(self) -> "DeclarationFeed":
        await self.link.__aenter__()
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.link.__aexit__(None, None, None)
        self._inbox.put(None)
        self._thread.join(5)

    def _arrived(self, topic: str, payload: bytes) -> None:
        try:
            self._inbox.put_nowait(payload)
        except queue.Full:  # QoS 1 and no ack yet would be better; counted and answered so the feeder resends
            self.counters["dropped_queue_full"] += 1
            self._answer({"accepted": 0, "refused": 0, "errors": ["the hub is busy; the delivery was not read, send it again"]})

    def _run(self) -> None:
        while (payload := self._inbox.get()) is not None:
            try:
                result = take(self.store, payload.decode("utf-8", errors="replace"), "json", "mqtt").view()
            except HubStoreError as exc:
                self.counters["store_failed"] += 1
                result = {"accepted": 0, "refused": 0, "errors": [f"the hub could not store the delivery: {exc}"]}
            except Exception as exc:  # a defect on one delivery must not end the worker: later ones go unanswered
                self.counters["failed"] += 1
                log.exception("declarations.delivery_failed")
                result = {"accepted": 0, "refused": 0,
                          "errors": [f"the hub could not read the delivery: {type(exc).__name__}: {exc}"]}
            self.counters["accepted"] += result["accepted"]
            self.counters["refused"] += result["refused"]
            self._answer(result)

    def _answer(self, result: dict) -> None:
        self.link.publish(RESULT_TOPIC, json.dumps(result, ensure_ascii=False).encode())
