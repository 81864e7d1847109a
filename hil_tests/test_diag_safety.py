"""Safety proof-test timings: bounded by what the PLC's samples show, never a 0.0 ms PASS by construction."""

from __future__ import annotations

from edge.config import load_config
from edge.diag import DiagOptions, Outcome, run_diag
from edge.diag.hand import Action, TwinHand


class PersonHand(TwinHand):
    """A person's hand: the act happens (on the twin's physics) but the software never knows when."""

    kind = "technician"

    async def perform(self, text: str, action: Action, *, confirm: bool) -> None:
        await super().perform(text, action, confirm=confirm)
        return None


async def _safety(tmp_path, monkeypatch, poll_ms: int | None = None) -> dict[tuple[str, str], object]:
    if poll_ms is not None:  # a slow PLC link: the read-back window and the watchdog sized to suit it
        monkeypatch.setenv("EDGE_DEVICES__PLC__POLL_PERIOD_MS", str(poll_ms))
        monkeypatch.setenv("EDGE_DEVICES__PLC__READBACK_TIMEOUT_MS", str(poll_ms * 6))
        monkeypatch.setenv("EDGE_DEVICES__PLC__HEARTBEAT_STALE_MS", str(poll_ms * 6))
        monkeypatch.setenv("EDGE_DEVICES__PLC__SIM__HOST_WATCHDOG_MS", str(poll_ms * 8))
    cfg = load_config("examples/conveyor.toml")
    opts = DiagOptions(out_dir=tmp_path, phases=("safety",), prompt_timeout_s=20, make_hand=PersonHand)
    result = await run_diag(cfg, opts)
    return {(m.name, m.target): m for m in result.phases[0].measurements}, result


async def test_without_the_act_time_responses_are_bounded_by_the_plc_samples(twin, tmp_path, monkeypatch):
    ms, result = await _safety(tmp_path, monkeypatch)
    assert result.phases[0].outcome in (Outcome.PASS, Outcome.MARGINAL), result.phases[0].diagnoses()
    timed = [m for (name, _), m in ms.items() if name in ("safety.belt_stop_ms", "safety.permit_drop_ms")]
    assert len(timed) == 6  # belt and permit for the e-stop, the tunnel door and the exit curtain
    for m in timed:
        lo, hi = m.interval
        assert m.value == hi and 0 <= lo < hi, m  # the worst case is what is judged, never a bare 0.0
        assert "no timestamp" in m.detail and "poll" in m.detail


async def test_samples_too_far_apart_make_the_timing_not_measurable(twin, tmp_path, monkeypatch):
    ms, result = await _safety(tmp_path, monkeypatch, poll_ms=300)
    assert result.phases[0].outcome in (Outcome.PASS, Outcome.MARGINAL), result.phases[0].reason
    m = ms[("safety.belt_stop_ms", "e-stop")]
    assert m.value is None and m.outcome == Outcome.SKIPPED and m.outcome != Outcome.PASS
    assert "not measurable" in m.diagnosis and "more than the 250 ms limit" in m.diagnosis
    assert ms[("safety.trip_seen", "e-stop")].outcome == Outcome.PASS
