"""structlog set-up: JSON lines to stdout under systemd, readable lines on a terminal, written by a thread of
their own (appliance.logs: a stream that stops taking lines never stops the daemon's event loop)."""

from __future__ import annotations

import logging
import sys

import structlog

from appliance.logs import drain_logs, queued_logger_factory

__all__ = ["configure_logging", "drain_logs"]


def configure_logging(fmt: str = "json", *, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else logging.INFO
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=queued_logger_factory(sys.stderr if quiet else sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # the Modbus client says "Failed to connect" on each of its own tries (3 a second with an RTU port missing);
    # the PLC driver reports the link's state and reason once per change (plc.link_lost)
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
