"""The demo officer: nobody sits at the demo's gantry screen, so a clearly labelled automatic officer
decides the vehicles waiting at the barrier, through the station's HTTP API as a person would.

It signs in with its own badge ("Demo officer (automatic)", audited under that name), looks at the
lane every few seconds, and decides each vehicle waiting for an officer once it has waited its
20-30 s: a vehicle the model flagged (detections) or whose declared seal was missing, opened or
tampered goes to the search bay; any other (manual: no model for it, or the model was not
applicable) is released as cleared on review. Only
`edge demo` starts it, never a station.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger()

BADGE, NAME, ROLE, PIN = "DE30DE30", "Demo officer (automatic)", "officer", "2468"
LOOK_S = 3.0
DELAY_S = (20.0, 30.0)


@dataclass
class DemoOfficer:
    """Decides the gantry's waiting vehicles at `base_url` after DELAY_S each."""

    base_url: str
    seed: int = 16
    transport: httpx.AsyncBaseTransport | None = None  # tests: the station's app in-process
    decided: int = 0
    failed: int = 0
    _delays: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        """Until cancelled; a station that does not answer (starting, restarting) is asked again later."""
        rng = random.Random(self.seed)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30.0, transport=self.transport) as client:
            while True:
                try:
                    await self._round(client, rng)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    log.warning("demo_officer.round_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(LOOK_S)

    async def _round(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        lane = await client.get("/api/lane")
        if lane.status_code == 401:
            signed = await client.post("/api/signin", json={"badge": BADGE, "pin": PIN})
            signed.raise_for_status()
            lane = await client.get("/api/lane")
        lane.raise_for_status()
        for vehicle in lane.json()["vehicles"]:
            if not vehicle["waiting_for_officer"]:
                continue
            delay = self._delays.setdefault(vehicle["id"], rng.uniform(*DELAY_S))
            if vehicle["waiting_s"] >= delay:
                await self._decide(client, vehicle["id"])

    async def _decide(self, client: httpx.AsyncClient, record_id: str) -> None:
        case = (await client.get(f"/api/cases/{record_id}")).json()
        search = case["detections"] or case["reason"] == "seal_not_intact"
        body: dict[str, Any] = {"lane": "search_bay"} if search else \
            {"lane": "release", "outcome": "cleared", "note": "demo officer: nothing seen on review"}
        answer = await client.post(f"/api/cases/{record_id}/decision", json=body)
        if answer.status_code == 200:
            self.decided += 1
            log.info("demo_officer.decided", vehicle=record_id, lane=body["lane"], verdict=case["verdict"])
        else:
            self.failed += 1
            log.warning("demo_officer.refused", vehicle=record_id, lane=body["lane"], status=answer.status_code,
                        detail=answer.text[:200])
