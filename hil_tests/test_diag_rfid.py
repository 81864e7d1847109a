"""RFID: a reader that sends only frames that do not decode is diagnosed as such, not as nobody presenting a badge."""

from __future__ import annotations

from edge.config import load_config
from edge.diag import DiagOptions, Outcome, run_diag
from edge.diag.hand import TwinHand

BAD_CHECKSUM = b"\x020F00C0FFEE00\x03"  # the reference badge's frame with a wrong checksum (it is DE)


class WrongSettingsReader(TwinHand):
    """The badge is presented, but the reader's output reaches the station corrupted (every frame)."""

    def _present_badge(self, target: str, tag_hex: str, seconds: float = 1.0) -> None:
        sim = self.station.readers[target].sim
        for i in range(20):
            self._later(i * 0.05, lambda: sim.send_raw(BAD_CHECKSUM))


async def test_a_reader_sending_only_undecodable_frames_fails_with_that_diagnosis(twin, tmp_path):
    opts = DiagOptions(out_dir=tmp_path, phases=("rfid",), prompt_timeout_s=10, make_hand=WrongSettingsReader)
    result = await run_diag(load_config("examples/xray.toml"), opts)
    rfid = result.phases[0]
    assert rfid.outcome == Outcome.FAIL, (rfid.outcome, rfid.reason)  # not ABORTED: the badge was presented
    failed = [m for m in rfid.measurements if m.outcome == Outcome.FAIL]
    assert [m.message for m in failed] == ["rfid.undecodable"]
    assert "checksum" in failed[0].diagnosis and "baud rate" in failed[0].diagnosis
