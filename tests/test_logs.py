"""Log lines are written by a thread of their own (appliance.logs): a stream that stops taking them never stops
the station daemon or the hub."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from appliance.logs import LineWriter

ROOT = Path(__file__).resolve().parents[1]


class Stalled(io.StringIO):
    """A stream whose writes wait until it is released (journald stalled, a pipe nobody reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing, self.release = threading.Event(), threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        self.release.wait()
        return super().write(text)


def test_a_stalled_stream_holds_up_no_caller_and_the_lines_dropped_are_counted() -> None:
    stream = Stalled()
    writer = LineWriter(stream, capacity=5)
    writer.put("line 0")
    assert stream.writing.wait(10)  # the thread is held writing it
    for i in range(1, 20):  # five wait, fourteen are dropped: put never waits
        writer.put(f"line {i}")
    assert not writer.drain(0.1)  # nothing written yet
    stream.release.set()
    assert writer.drain(10)
    writer.put("after")  # the stream takes lines again: the count stands where the lines were lost
    assert writer.drain(10)
    lines = stream.getvalue().splitlines()
    assert lines[:6] == [f"line {i}" for i in range(6)] and lines[7:] == ["after"]
    assert json.loads(lines[6])["event"] == "log.lines_dropped" and json.loads(lines[6])["lines"] == 14
    assert writer.dropped_total == 14


def test_the_daemon_logs_while_nobody_reads_its_output_and_writes_every_line_at_exit() -> None:
    """A process logging 64 KiB and more to a pipe nobody reads went on (its log calls returned), and the lines
    waiting were written when it ended: none lost below the queue's size."""
    script = ("from edge.logging import configure_logging\nimport structlog\nconfigure_logging('json')\n"
              "log = structlog.get_logger()\n"
              "for i in range(2000): log.info('demo.line', i=i, pad='x' * 100)\n"
              "open(__import__('sys').argv[1], 'w').write('returned')\n")
    done = Path(os.environ.get("TMPDIR", "/tmp")) / f"logging-{os.getpid()}.done"
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", script, str(done)], cwd=ROOT, stdout=write)
    os.close(write)
    try:
        # every log call has returned while the pipe (64 KiB) is full and unread: the process wrote its mark
        for _ in range(600):
            if done.exists():
                break
            threading.Event().wait(0.1)
        assert done.read_text() == "returned"
        with os.fdopen(read) as out:  # now read: the exit drains the queue
            lines = out.read().splitlines()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        done.unlink(missing_ok=True)
    assert [json.loads(line)["i"] for line in lines] == list(range(2000))


def test_a_forked_child_writes_its_own_lines() -> None:
    """A forked child has no copy of the writer's thread: it starts its own, so its lines are not left queued."""
    read, write = os.pipe()
    stream = os.fdopen(write, "w")
    writer = LineWriter(stream)
    pid = os.fork()
    if pid == 0:  # the child
        writer.put("from the child")
        os._exit(0 if writer.drain(10) else 1)
    _, status = os.waitpid(pid, 0)
    writer.put("from the parent")
    assert writer.drain(10)
    stream.close()
    with os.fdopen(read) as out:
        assert sorted(out.read().splitlines()) == ["from the child", "from the parent"]
    assert os.waitstatus_to_exitcode(status) == 0


def test_lines_a_stalled_stream_never_took_by_the_exit_are_counted_on_stderr() -> None:
    """A stream stalled past the exit's drain lost the lines waiting, without a word."""
    script = ("import sys, threading, structlog\nfrom appliance import logs\n"
              "class Stalled:\n    def write(self, text): threading.Event().wait()\n    def flush(self): pass\n"
              "structlog.configure(logger_factory=logs.queued_logger_factory(Stalled()))\n"
              "log = structlog.get_logger()\n"
              "for i in range(50): log.info('demo.line', i=i)\n"
              "logs.drain_logs(0.2)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    unwritten = [json.loads(line) for line in done.stderr.splitlines() if "log.lines_unwritten" in line]
    assert unwritten and unwritten[0]["lines"] == 50  # the thread holds one, 49 wait: none was written
