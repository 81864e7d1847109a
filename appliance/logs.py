"""Log lines written by a thread of their own (the station daemon's and the hub's logs).

A stream that stops taking lines (journald stalled under disk load, a pipe nobody reads) stops that thread, never
the process's event loop, which drives the PLC, the gates and the screens. Past `QUEUE_LINES` lines waiting, new
lines are dropped and counted, and a `log.lines_dropped` line with their count stands where they were lost; the
lines waiting are written when the process ends (`drain_logs`, also before an `os._exit`).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
import weakref
from typing import Any, Callable, TextIO

QUEUE_LINES = 10_000  # lines waiting for a stalled stream before new ones are dropped (a few MB at most)
DRAIN_S = 5.0  # how long the process's exit waits for the lines still waiting


_every: weakref.WeakSet[LineWriter] = weakref.WeakSet()  # every writer, for a forked child to restart


class LineWriter:
    """Writes lines to `stream` on its own thread, in the order they were put; where lines were dropped (the
    queue full) a `log.lines_dropped` line stands in their place, with their count."""

    def __init__(self, stream: TextIO, capacity: int = QUEUE_LINES) -> None:
        self.stream = stream
        self.dropped = 0  # lines dropped since the last notice (the queue was full)
        self.dropped_total = 0
        self.unwritten = 0  # lines the stream refused (closed, broken)
        self._capacity = capacity
        self._start()
        _every.add(self)

    def _start(self) -> None:
        """A fresh queue and thread (at creation, and in a forked child, which has no copy of the thread)."""
        self._lines: queue.Queue[str] = queue.Queue(self._capacity)
        self._done = threading.Condition()
        self._put = self._taken = 0  # lines queued, and lines the thread is done with
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue one line (never blocks); dropped and counted when the queue is full."""
        with self._done:
            if self.dropped:
                notice = json.dumps({"event": "log.lines_dropped", "level": "error", "lines": self.dropped,
                                     "detail": "the log stream took no lines for a while: these were not written"})
                if not self._offer(notice):
                    self._drop()
                    return
                self.dropped = 0
            if not self._offer(line):
                self._drop()

    def _offer(self, line: str) -> bool:
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            return False
        self._put += 1
        return True

    def _drop(self) -> None:
        self.dropped += 1
        self.dropped_total += 1

    def waiting(self) -> int:
        """Lines queued and not written yet."""
        with self._done:
            return self._put - self._taken

    def drain(self, timeout_s: float = DRAIN_S) -> bool:
        """Wait until every line queued so far is written (the process's exit, a forced one too): True if so."""
        with self._done:
            target = self._put
            return self._done.wait_for(lambda: self._taken >= target, timeout_s)

    def _run(self) -> None:
        while True:
            line = self._lines.get()
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: nothing more can be said there
                self.unwritten += 1
            with self._done:
                self._taken += 1
                self._done.notify_all()


class QueuedLogger:
    """A structlog logger that hands each rendered line to a LineWriter."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.put(message)

    log = debug = info = warn = warning = fatal = failure = err = error = critical = exception = msg


_writers: dict[int, LineWriter] = {}


def writer_for(stream: TextIO) -> LineWriter:
    """The one LineWriter of `stream` in this process (configure_logging may run more than once)."""
    if id(stream) not in _writers:
        _writers[id(stream)] = LineWriter(stream)
    return _writers[id(stream)]


def drain_logs(timeout_s: float = DRAIN_S) -> None:
    """Write the lines still waiting (before the process ends, also by os._exit). Lines the stream did not take
    in time, or dropped with no line after them to say so, are counted in one line on stderr, tried once for half
    a second (that stream may be the stalled one)."""
    for writer in list(_writers.values()):
        if writer.drain(timeout_s) and not writer.dropped:
            continue
        lost = writer.waiting() + writer.dropped
        line = json.dumps({"event": "log.lines_unwritten", "level": "error", "lines": lost,
                           "detail": f"{lost} log lines were not written: the log stream took none for {timeout_s:g} s "
                                     "as the process ended"}) + "\n"
        say = threading.Thread(target=_write_stderr, args=(line.encode(),), name="log-unwritten", daemon=True)
        say.start()
        say.join(0.5)


def _write_stderr(data: bytes) -> None:
    try:
        os.write(2, data)
    except OSError:
        pass


atexit.register(drain_logs)


def _restart_in_child() -> None:
    for writer in list(_every):
        writer._start()


os.register_at_fork(after_in_child=_restart_in_child)


def queued_logger_factory(stream: TextIO) -> Callable[..., QueuedLogger]:
    """A structlog `logger_factory` whose loggers hand their lines to `stream`'s LineWriter."""
    writer = writer_for(stream)

    def factory(*args: Any) -> QueuedLogger:
        return QueuedLogger(writer)

    return factory
