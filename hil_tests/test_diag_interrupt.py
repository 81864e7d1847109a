"""Ctrl-C in the middle of a phase: the station is put back in its safe state and the run is still recorded."""

from __future__ import annotations

import signal

from edge.diag.hand import Action, TwinHand
from hil_tests.conftest import diag, phase


def test_ctrl_c_while_the_belt_runs_and_the_permit_is_on_leaves_the_station_safe_and_recorded(twin, tmp_path,
                                                                                             monkeypatch):
    seen = {}
    perform = TwinHand.perform

    async def interrupt_at_the_estop(self, text: str, action: Action, *, confirm: bool) -> float | None:
        if action.verb == "press_estop":  # energised: belt running, X-ray permit on, controller armed
            model = self.station.plc.sim.model
            seen.update(model=model, before=(model.belt_running, model.active("xray_permit_request")))
            signal.raise_signal(signal.SIGINT)  # the technician's Ctrl-C, delivered as the terminal does
        return await perform(self, text, action, confirm=confirm)

    monkeypatch.setattr(TwinHand, "perform", interrupt_at_the_estop)
    # Ctrl-C reaches the run as at a terminal: through Python's own handler, which asyncio.run takes over (a handler
    # an earlier test in this worker left behind, a stopped uvicorn server's, took it instead and the run passed)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc, record = diag(tmp_path / "out", "--config", "examples/conveyor.toml", "--phases", "clock,safety")
    finally:
        signal.signal(signal.SIGINT, previous)

    assert seen["before"] == (True, True)
    model = seen["model"]
    assert not model.belt_running and not model.active("xray_permit_request")  # safe, whatever the phase did
    assert rc == 2 and record["outcome"] == "ABORTED"  # recorded, not a traceback and nothing written
    assert phase(record, "clock")["outcome"] == "PASS"
    safety = phase(record, "safety")
    assert safety["outcome"] == "ABORTED" and "interrupted (Ctrl-C)" in safety["reason"], safety
    assert record["teardown_unconfirmed"] == []
