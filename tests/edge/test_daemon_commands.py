"""The real daemon process steered by signed hub commands over a real Mosquitto: its /healthz shows the
settings in force and the last applied command, and a requested diagnostic run comes back as a report."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import httpx

from central_sync import commands as c
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto, free_port
from models.testgraphs import write_package
from polling import until
from test_daemon import ROOT, _health, _write_config


async def test_commands_change_the_daemon_and_show_on_its_health(tmp_path):
    port = free_port()
    key = c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    config = _write_config(tmp_path, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128))
    results: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    with Mosquitto(tmp_path / "broker") as broker:
        config.write_text(config.read_text() + f"""
[sync]
host = "127.0.0.1"
port = {broker.port}

[commands]
hub_public_key = "{tmp_path / 'hub.pub'}"
""")
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            health = await until(lambda: _health(port), "the commands' settings on /healthz",
                                 check=lambda h: h and "commands" in h, timeout=90, in_thread=True)
            assert health["commands"]["thresholds"] == {"metal": 0.5, "organic": 0.5}
            assert health["commands"]["last_command"] is None
            async with c.CommandLink(BrokerConfig(port=broker.port), "hub-test", [c.result_topic("+")],
                                     lambda t, p: loop.call_soon_threadsafe(results.put_nowait, json.loads(p))) as hub:
                await hub.ready()
                cmd = c.new_command("xray-test", "set_thresholds", {"thresholds": {"metal": 0.25}}, issuer="sup1")
                hub.publish(c.cmd_topic("xray-test"), c.sign(key, cmd))
                done = await asyncio.wait_for(results.get(), 30)
                assert (done["outcome"], done["settings"]["thresholds"]["metal"]) == ("applied", 0.25)
                health = await until(lambda: _health(port), "the change on /healthz",
                                     check=lambda h: h and h["commands"]["last_command"], timeout=10, in_thread=True)
                assert health["commands"]["thresholds"]["metal"] == 0.25
                assert (health["commands"]["last_command"]["id"], health["commands"]["last_command"]["issuer"]) == (cmd.id, "sup1")
                hub.publish(c.cmd_topic("xray-test"), b"{not a command")  # garbage: refused, counted, shown
                bad = await asyncio.wait_for(results.get(), 30)
                assert bad["outcome"] == "rejected"
                health = await until(lambda: _health(port), "the refusal counted on /healthz",
                                     check=lambda h: h and h["command_counts"].get("rejected") == 1, timeout=10,
                                     in_thread=True)
                assert health["command_counts"]["applied"] == 1
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                assert 'edge_commands_total{outcome="rejected"} 1.0' in metrics

                diag = c.new_command("xray-test", "request_diag", {"plan": "quick"}, issuer="sup1")
                hub.publish(c.cmd_topic("xray-test"), c.sign(key, diag))
                started = await asyncio.wait_for(results.get(), 30)
                report = await asyncio.wait_for(results.get(), 60)
            assert (started["id"], started["reason"], report["id"], report["reason"]) == (diag.id, "applied", diag.id, "report")
            phases = {p["name"]: p for p in report["report"]["phases"]}
            assert list(phases) == ["links", "clock", "hub"]
            assert phases["links"]["outcome"] == "PASS" and phases["hub"]["outcome"] == "PASS"
            assert [m["name"] for m in phases["links"]["measurements"]] == ["links.source_ok"]
            assert proc.poll() is None  # the lane ran on throughout
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
