"""Shared test helpers live beside this file (polling.py): a conftest in a directory without
__init__.py puts that directory on sys.path, so every test imports them as `from polling import until`."""

import signal

import pytest
from hypothesis import settings

# Property tests judge properties, not this machine's speed: no per-example deadline (a loaded
# machine made a fusion property "fail" on hypothesis' default 200 ms).
settings.register_profile("cpe", deadline=None)
settings.load_profile("cpe")


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """SIGINT and SIGTERM handled after each test as before it. uvicorn takes both while it serves and, stopping,
    puts back what it found: two servers of one test stopped in the order they started leave the first one's
    handler behind, and a later test in the same worker that sends a Ctrl-C (hil_tests/test_diag_interrupt.py) had it
    taken by that dead server instead of by asyncio.run (the run went on and passed)."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
