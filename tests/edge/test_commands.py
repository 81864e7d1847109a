"""Station side of signed commands: forged, expired, replayed and foreign commands are refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import sqlite3
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import commands as c
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto
from edge.commands import CommandHandlers, CommandProcessor, CommandReceiver, CommandsConfig

HUB_KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
MODEL = "ab" * 32


class Station:
    """Records what the daemon's callbacks were asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def handlers(self) -> CommandHandlers:
        async def switch(sha: str) -> None:
            if sha != MODEL:
                raise LookupError(f"no model with sha256 {sha[:12]} on this station")
            self.calls.append(("switch_model", sha))
        return CommandHandlers(set_thresholds=lambda t: self.calls.append(("thresholds", t)),
                               set_tip_rate=lambda r: self.calls.append(("tip", r)), switch_model=switch)


@pytest.fixture
def station():
    return Station()


def processor(tmp_path, station, key=HUB_KEY.public_key()):
    return CommandProcessor(tmp_path / "station.db", "gate-1", key, CommandsConfig(max_clock_skew_s=5), station.handlers())


def signed(op="set_tip_rate", args=None, station="gate-1", key=HUB_KEY, **kw) -> bytes:
    return c.sign(key, c.new_command(station, op, {"rate": 0.02} if args is None else args, issuer="sup1", **kw))


async def test_valid_command_is_applied_and_recorded(tmp_path, station):
    proc = processor(tmp_path, station)
    res = await proc.process(signed("set_thresholds", {"thresholds": {"knife": 0.35}}))
    assert (res.outcome, res.reason) == ("applied", "applied")
    assert station.calls == [("thresholds", {"knife": 0.35})]
    assert proc.history()[0][2:6] == ("set_thresholds", "sup1", "applied", "applied")


@pytest.mark.parametrize("make,reason", [  # built when the test runs: a long suite must not age them
    (lambda: signed(key=Ed25519PrivateKey.generate()), "bad_signature"),
    (lambda: signed(station="gate-2"), "wrong_station"),
    (lambda: signed(ttl_s=10, now=1_000_000.0), "expired"),
    (lambda: signed(ttl_s=10, now=4_000_000_000.0), "not_yet_valid"),
    (lambda: signed(ttl_s=90_000), "ttl_too_long"),
    (lambda: signed("request_diag", {}), "unsupported"),
    (lambda: b'{"v":1,"payload":"{}","sig":"!!"}', "bad_format"),
], ids=["bad_signature", "wrong_station", "expired", "not_yet_valid", "ttl_too_long", "unsupported", "bad_format"])
async def test_refused_commands_change_nothing(tmp_path, station, make, reason):
    res = await processor(tmp_path, station).process(make())
    assert (res.outcome, res.reason) == ("rejected", reason) and station.calls == []


def signed_as_is(op: str, args: dict, station: str = "gate-1", key=HUB_KEY, issued_at: float | None = None,
                 expires_at: float | None = None) -> bytes:
    """Signed by the hub's key without the hub's argument checks: what an older hub or a faulty one could send."""
    now = time.time()
    cmd = c.Command.model_construct(v=1, id=uuid.uuid4().hex, station=station, op=op, args=args, issuer="sup1",
                                    issued_at=now if issued_at is None else issued_at,
                                    expires_at=now + 60 if expires_at is None else expires_at,
                                    nonce=secrets.token_hex(16))
    return c.sign(key, cmd)


@pytest.mark.parametrize("value", [1.0, 0.995, 1])
async def test_a_signed_threshold_that_turns_detection_off_is_refused(tmp_path, station, value):
    """A threshold of 1.0 for a class lets none of its detections through: a signed command from the hub setting it
    was applied (applied, knife 1.0), turning the station's knife detection off from the control room."""
    res = await processor(tmp_path, station).process(signed_as_is("set_thresholds", {"thresholds": {"knife": value}}))
    assert (res.outcome, res.reason) == ("rejected", "bad_format") and station.calls == []
    assert res.detail == ("arguments of set_thresholds are invalid: thresholds.knife: Input should be less than or"
                          f" equal to {c.MAX_THRESHOLD} (got {value!r})")
    ok = await processor(tmp_path, station).process(signed_as_is("set_thresholds", {"thresholds": {"knife": 0.99}}))
    assert ok.outcome == "applied" and station.calls == [("thresholds", {"knife": 0.99})]


@pytest.mark.parametrize("issued,expires", [("now", "NaN"), ("NaN", "now"), ("-Infinity", "Infinity")])
async def test_a_signed_command_whose_times_are_not_numbers_is_refused(tmp_path, station, issued, expires):
    """JSON's NaN is read as a float: a signed command expiring at NaN passed every freshness check (NaN compares
    false) and process() raised sqlite3.IntegrityError recording its nonce: no result, no record, the worker's
    `failed` counter only."""
    now = repr(time.time())
    payload = (f'{{"v":1,"id":"{uuid.uuid4().hex}","station":"gate-1","op":"set_tip_rate","args":{{"rate":0.1}},'
               f'"issued_at":{now if issued == "now" else issued},"expires_at":{now if expires == "now" else expires},'
               f'"nonce":"{secrets.token_hex(16)}","issuer":"sup1"}}')
    data = json.dumps({"v": 1, "payload": payload, "sig": base64.b64encode(HUB_KEY.sign(payload.encode())).decode()})
    proc = processor(tmp_path, station)
    res = await proc.process(data.encode())
    assert (res.outcome, res.reason) == ("rejected", "bad_format") and station.calls == []
    assert res.detail.startswith("signed command is invalid: ") and "finite number" in res.detail
    assert proc.history()[0][4:6] == ("rejected", "bad_format")


async def test_replay_is_refused_even_after_a_restart(tmp_path, station):
    data = signed()
    assert (await processor(tmp_path, station).process(data)).outcome == "applied"
    again = await processor(tmp_path, station).process(data)
    assert (again.outcome, again.reason) == ("rejected", "replayed") and station.calls == [("tip", 0.02)]


async def test_unknown_model_is_reported_failed(tmp_path, station):
    res = await processor(tmp_path, station).process(signed("switch_model", {"sha256": "cd" * 32}))
    assert (res.outcome, res.reason) == ("failed", "handler_failed") and "no model" in res.detail
    res = await processor(tmp_path, station).process(signed("switch_model", {"sha256": MODEL}))
    assert res.outcome == "applied" and station.calls == [("switch_model", MODEL)]


async def test_no_pinned_key_accepts_nothing(tmp_path, station):
    res = await processor(tmp_path, station, key=None).process(signed())
    assert (res.outcome, res.reason) == ("rejected", "no_key")


@contextlib.asynccontextmanager
async def over_mqtt(tmp_path, station, handlers=None, queue_max=32):
    """A station's command receiver and a hub's command link on a real broker: (receiver, hub link, results)."""
    (tmp_path / "hub.pub").write_bytes(_pem(HUB_KEY))
    results: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = BrokerConfig(port=broker.port)
        rx_cfg = CommandsConfig(hub_public_key=tmp_path / "hub.pub", queue_max=queue_max)
        async with CommandReceiver(cfg, "gate-1", tmp_path / "station.db", handlers or station.handlers(),
                                   rx_cfg) as rx, \
                c.CommandLink(cfg, "hub-test", [c.result_topic("+")],
                              lambda t, p: loop.call_soon_threadsafe(results.put_nowait, json.loads(p))) as hub:
            await rx.link.ready()
            await hub.ready()
            yield rx, hub, results


async def test_over_mqtt_results_come_back(tmp_path, station):
    good = signed()
    async with over_mqtt(tmp_path, station) as (rx, hub, results):
        for data in (good, good, signed(key=Ed25519PrivateKey.generate()), signed(ttl_s=1, now=1_000_000.0)):
            hub.publish(c.cmd_topic("gate-1"), data)
        got = [await asyncio.wait_for(results.get(), 10) for _ in range(4)]
    assert [(r["outcome"], r["reason"]) for r in got] == [
        ("applied", "applied"), ("rejected", "replayed"), ("rejected", "bad_signature"), ("rejected", "expired")]
    assert station.calls == [("tip", 0.02)] and rx.counters == {"applied": 1, "rejected": 3}
    rows = sqlite3.connect(tmp_path / "station.db").execute("SELECT outcome FROM station_commands ORDER BY row").fetchall()
    assert [r[0] for r in rows] == ["applied", "rejected", "rejected", "rejected"]


async def test_a_payload_nested_too_deep_is_rejected_and_later_commands_still_applied(tmp_path, station):
    """A 5 kB unsigned message nested too deep raised RecursionError while its rejection was reported: the
    command worker ended silently and no later signed command was applied or answered."""
    hostile = json.dumps({"payload": "[" * 5000, "sig": "AA=="}).encode()
    async with over_mqtt(tmp_path, station) as (_, hub, results):
        hub.publish(c.cmd_topic("gate-1"), hostile)
        hub.publish(c.cmd_topic("gate-1"), signed())
        got = [await asyncio.wait_for(results.get(), 10) for _ in range(2)]
    assert [r["outcome"] for r in got] == ["rejected", "applied"] and station.calls == [("tip", 0.02)]


async def test_a_malformed_or_oversized_command_is_refused_in_one_sentence_and_counted(tmp_path, station):
    """The refusal's detail was pydantic's report: several lines, a link to its documentation and the start of the
    input ("... 1 validation error for Envelope\\npayload\\n  String should have at most 16384 characters [type=...")."""
    oversized = json.dumps({"v": 1, "payload": "x" * 100_000, "sig": "AA=="}).encode()
    too_long = json.dumps({"v": 1, "payload": "x" * 20_000, "sig": "AA=="}).encode()
    not_json, bad_signature = b"\xff\xfe not json", b'{"v":1,"payload":"{}","sig":"!!"}'
    async with over_mqtt(tmp_path, station) as (rx, hub, results):
        for data in (oversized, too_long, not_json, bad_signature, signed()):
            hub.publish(c.cmd_topic("gate-1"), data)
        got = [await asyncio.wait_for(results.get(), 10) for _ in range(5)]
    assert [(r["outcome"], r["reason"]) for r in got] == [("rejected", "bad_format")] * 4 + [("applied", "applied")]
    assert [r["detail"] for r in got[:4]] == [
        f"command envelope of {len(oversized)} bytes is larger than the {c.MAX_ENVELOPE} bytes a command may take;"
        " it was not read",
        f"command envelope of {len(too_long)} bytes is invalid: payload: String should have at most 16384 characters",
        f"command envelope of {len(not_json)} bytes is invalid: envelope: Invalid JSON: expected value at line 1 column 1",
        f"command envelope of {len(bad_signature)} bytes has a signature that is not base64 (2 characters)"]
    assert rx.counters == {"rejected": 4, "applied": 1} and station.calls == [("tip", 0.02)]


async def test_a_command_the_full_queue_cannot_take_is_answered_rejected_queue_full(tmp_path, station):
    """A command dropped because the station's queue was full got no result: the hub showed "expired without a
    report". Now it is answered and recorded as any refusal, and counted."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(rate: float) -> None:
        started.set()
        await release.wait()
        station.calls.append(("tip", rate))

    first, queued, refused = signed(), signed(), signed()
    async with over_mqtt(tmp_path, station, CommandHandlers(set_tip_rate=slow), queue_max=1) as (rx, hub, results):
        hub.publish(c.cmd_topic("gate-1"), first)  # taken by the worker, whose handler waits
        await asyncio.wait_for(started.wait(), 10)
        hub.publish(c.cmd_topic("gate-1"), queued)  # waits in the queue (queue_max 1)
        hub.publish(c.cmd_topic("gate-1"), refused)  # finds it full
        answer = await asyncio.wait_for(results.get(), 10)
        release.set()
        rest = [await asyncio.wait_for(results.get(), 10) for _ in range(2)]
    refused_id = c.peek(refused)["id"]
    assert (answer["id"], answer["outcome"], answer["reason"]) == (refused_id, "rejected", "queue_full")
    assert answer["detail"] == ("the station's command queue is full (1 waiting, [commands] queue_max); the command"
                                " was not applied: send it again")
    assert sorted((r["id"], r["outcome"]) for r in rest) == sorted(
        [(c.peek(first)["id"], "applied"), (c.peek(queued)["id"], "applied")])
    assert rx.counters == {"applied": 2, "rejected": 1, "dropped_queue_full": 1}
    rows = sqlite3.connect(tmp_path / "station.db").execute(
        "SELECT outcome, reason FROM station_commands WHERE cmd_id = ?", (refused_id,)).fetchall()
    assert rows == [("rejected", "queue_full")]


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(c.serialization.Encoding.PEM, c.serialization.PublicFormat.SubjectPublicKeyInfo)


async def test_slow_handler_is_reported_as_timed_out(tmp_path):
    async def stuck(rate: float) -> None:
        await asyncio.sleep(10)
    proc = CommandProcessor(tmp_path / "station.db", "gate-1", HUB_KEY.public_key(),
                            CommandsConfig(handler_timeout_s=0.1), CommandHandlers(set_tip_rate=stuck))
    res = await proc.process(signed())
    assert (res.outcome, res.reason) == ("failed", "handler_timeout")


def test_every_reason_code_is_declared(tmp_path):
    import re
    from pathlib import Path
    src = Path(__file__).resolve().parents[2].joinpath("edge", "commands.py").read_text()
    used = set(re.findall(r'Refused\("([a-z_]+)"', src)) | set(re.findall(r'"failed", "([a-z_]+)"', src))
    assert used and used <= set(c.REASONS)


def settings_handlers(station: Station, report=None) -> CommandHandlers:
    """The Station's handlers plus its settings and, when given, a diagnostic run returning `report`."""
    state = {"thresholds": {"knife": 0.5}, "tip_rate": 0.03}

    def set_thresholds(t: dict) -> None:
        state["thresholds"] = {**state["thresholds"], **t}

    return CommandHandlers(set_thresholds=set_thresholds, set_tip_rate=station.handlers().set_tip_rate,
                           request_diag=report, settings=lambda: dict(state))


async def test_results_carry_the_settings_in_force_and_the_last_command(tmp_path, station):
    proc = CommandProcessor(tmp_path / "station.db", "gate-1", HUB_KEY.public_key(), CommandsConfig(),
                            settings_handlers(station))
    assert proc.settings()["last_command"] is None
    res = await proc.process(signed("set_thresholds", {"thresholds": {"knife": 0.35}}))
    assert res.settings is not None and res.settings["thresholds"] == {"knife": 0.35}
    assert res.settings["last_command"]["id"] == res.id and res.settings["last_command"]["issuer"] == "sup1"
    refused = await proc.process(signed("set_thresholds", {"thresholds": {"knife": 0.9}}, station="gate-2"))
    assert refused.settings is not None and refused.settings["last_command"]["id"] == res.id  # a refusal changes nothing
    proc.close()
    assert proc.settings()["changed_at"] == res.settings["changed_at"]  # a last status after closing still says it


async def test_a_diagnostic_run_is_started_then_reported(tmp_path, station):
    gate = asyncio.Event()

    asked: list[tuple[str, str]] = []

    def run(plan: str, lang: str):
        asked.append((plan, lang))

        async def go() -> dict:
            await gate.wait()
            return {"plan": plan, "outcome": "PASS", "phases": [{"name": "clock", "outcome": "PASS"}]}
        return go()

    proc = CommandProcessor(tmp_path / "station.db", "gate-1", HUB_KEY.public_key(), CommandsConfig(),
                            settings_handlers(station, run))
    reports: list = []
    proc.on_report = reports.append
    started = await proc.process(signed("request_diag", {"plan": "quick"}))
    assert (started.outcome, started.reason) == ("applied", "applied") and "started" in started.detail
    busy = await proc.process(signed("request_diag", {"plan": "full"}))
    assert (busy.outcome, busy.reason) == ("failed", "handler_failed") and started.id in busy.detail
    gate.set()
    await proc.diag
    [rep] = reports
    assert (rep.id, rep.outcome, rep.reason) == (started.id, "applied", "report")
    assert rep.report == {"plan": "quick", "outcome": "PASS", "phases": [{"name": "clock", "outcome": "PASS"}]}
    assert proc.report(started.id) == rep.report and rep.detail == "diagnostic run PASS: clock PASS"
    assert asked == [("quick", "en")]  # the report in the requester's language; English when none is asked


async def test_a_diagnostic_report_speaks_the_requesters_language(tmp_path):
    from pathlib import Path

    from edge.config import load_config
    from edge.devices import Devices
    from edge.diag.remote import run_remote

    assert c.check_args("request_diag", {"plan": "quick", "lang": "zh-Hant"}) == {"plan": "quick", "lang": "zh-Hant"}
    with pytest.raises(c.CommandError):
        c.check_args("request_diag", {"plan": "quick", "lang": "fr"})
    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "conveyor.toml")
    cfg = cfg.model_copy(update={"devices": cfg.devices.model_validate({}), "sync": None,
                                 "station": cfg.station.model_copy(update={"data_dir": tmp_path})})
    report = await run_remote(cfg, Devices(), None, "quick", lang="zh-Hant")
    assert [p["title"] for p in report["phases"]][1] == "時鐘"
    busy = await run_remote(cfg, Devices(), None, "full", lane_busy=lambda: True, lang="zh-Hant")
    inference = next(p for p in busy["phases"] if p["name"] == "inference")
    assert inference["outcome"] == "SKIPPED" and inference["reason"].startswith("未執行：車道正在使用中")


async def test_a_failing_run_is_reported_as_failed(tmp_path, station):
    async def broken(plan: str, lang: str) -> dict:
        raise OSError("the PLC port is gone")

    proc = CommandProcessor(tmp_path / "station.db", "gate-1", HUB_KEY.public_key(), CommandsConfig(),
                            settings_handlers(station, broken))
    reports: list = []
    proc.on_report = reports.append
    assert (await proc.process(signed("request_diag", {"plan": "quick"}))).outcome == "applied"
    await proc.diag
    assert reports[0].outcome == "failed" and reports[0].report == {"outcome": "ERROR", "detail": "OSError: the PLC port is gone"}


def test_a_long_report_is_shortened_within_the_limit():
    from edge.commands import shrink_report
    phase = {"name": "links", "notes": ["n" * 400], "measurements": [{"name": "m", "value": 1, "detail": "d" * 400}] * 50}
    report = {"outcome": "PASS", "phases": [phase] * 10}
    small = shrink_report(report, limit=4000)
    assert len(json.dumps(small)) <= 4000 and small["shortened"] and small["outcome"] == "PASS"
    assert [p["name"] for p in small["phases"]] == ["links"] * 10
    assert shrink_report({"outcome": "PASS", "phases": []}) == {"outcome": "PASS", "phases": []}


async def test_the_remote_plan_moves_nothing_and_skips_inference_while_the_lane_is_busy(tmp_path):
    from pathlib import Path

    from edge.config import load_config
    from edge.devices import Devices
    from edge.diag.context import DiagError
    from edge.diag.remote import REMOTE_PLANS, run_remote

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "conveyor.toml")
    cfg = cfg.model_copy(update={"devices": cfg.devices.model_validate({}), "sync": None,
                                 "station": cfg.station.model_copy(update={"data_dir": tmp_path})})
    report = await run_remote(cfg, Devices(), None, "full", lane_busy=lambda: True)
    # the clock phase measures this machine's clock (a drifting virtual machine fails it): it runs, whatever it finds
    outcomes = [(p["name"], p["outcome"] if p["name"] != "clock" else p["outcome"] in ("PASS", "FAIL"))
                for p in report["phases"]]
    # a station with no device configured: the links phase had nothing to check, which is no PASS
    assert outcomes == [("links", "SKIPPED"), ("inference", "SKIPPED"), ("clock", True), ("hub", "SKIPPED")]
    assert "Nothing was checked" in report["phases"][0]["reason"]
    assert "lane is in use" in report["phases"][1]["reason"]
    assert {"io", "tracking", "imaging", "safety"} <= set(report["not_run"])
    assert not {"io", "tracking", "imaging", "safety", "rfid", "llrp", "cameras"} & {p for ps in REMOTE_PLANS.values() for p in ps}
    with pytest.raises(DiagError, match="'all' is not one of quick, full"):
        await run_remote(cfg, Devices(), None, "all")
