"""The sign-in guard's windows and locks, on a hand-driven clock."""

from __future__ import annotations

from appliance import signin_guard
from appliance.signin_guard import SignInGuard


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lock_is_per_pair_and_expires():
    clock = Clock()
    g = SignInGuard(window_s=60, client_max=100, pair_max=3, lockout_s=30, clock=clock)
    assert [g.failed("op1", "a") for _ in range(3)] == ["first", "again", "locked"]
    assert g.wait_s("op1", "a") == 30 and g.wait_s("op1", "b") == 0 and g.wait_s("op2", "a") == 0
    clock.now = 30.0
    assert g.wait_s("op1", "a") == 0


def test_failures_leave_the_window():
    clock = Clock()
    g = SignInGuard(window_s=60, client_max=2, pair_max=99, lockout_s=30, clock=clock)
    assert [g.failed(u, "a") for u in ("x", "y")] == ["first", "client_limit"]
    assert g.wait_s("z", "a") == 60
    clock.now = 60.0
    assert g.wait_s("z", "a") == 0


def test_memory_stays_bounded_under_many_addresses(monkeypatch):
    monkeypatch.setattr(signin_guard, "MAX_TRACKED", 50)
    g = SignInGuard(window_s=60, client_max=5, pair_max=5, lockout_s=30, clock=Clock())
    for n in range(5000):
        g.failed(f"user{n}", f"2001:db8::{n:x}")
    assert g.counters["failed"] == 5000
    assert max(len(t) for t in (g._clients, g._pairs, g._accounts)) <= 50
