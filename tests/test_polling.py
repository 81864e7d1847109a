"""The one polling helper: returns what it waited for, and a time out says what and the last value."""

from __future__ import annotations

import asyncio

import pytest

from polling import until, wait_until


async def test_until_returns_the_value_that_passed_the_check() -> None:
    seen = iter(range(100))
    assert await until(lambda: next(seen), "a count of three", check=lambda n: n >= 3, interval=0) == 3


async def test_until_awaits_an_async_probe_and_runs_a_blocking_one_in_a_thread() -> None:
    async def ready() -> str:
        await asyncio.sleep(0)
        return "up"

    assert await until(ready, "the link is up") == "up"
    assert await until(lambda: "row", "the row is there", in_thread=True) == "row"


async def test_a_time_out_says_what_was_awaited_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"the belt runs not reached within 0.05 s \(last value 'stopped'\)"):
        await until(lambda: "stopped", "the belt runs", check=lambda s: s == "running", timeout=0.05)


async def test_without_a_description_the_condition_is_quoted() -> None:
    with pytest.raises(AssertionError, match=r"lambda: 1 > 2.*last value False"):
        await until(lambda: 1 > 2, timeout=0.05)


def test_wait_until_blocks_and_says_the_same() -> None:
    assert wait_until(lambda: [1], "a list") == [1]
    with pytest.raises(AssertionError, match=r"the outbox drained not reached within 0.05 s \(last value 7\)"):
        wait_until(lambda: 7, "the outbox drained", check=lambda n: n == 0, timeout=0.05, interval=0.01)


async def test_without_a_description_a_check_on_a_named_probe_is_quoted() -> None:
    async def read_state() -> dict:
        return {"link_ok": False}

    with pytest.raises(AssertionError, match=r"check=lambda s: s\[.link_ok.\].*last value \{'link_ok': False\}"):
        await until(read_state, check=lambda s: s["link_ok"], timeout=0.05)
