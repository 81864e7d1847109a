"""Failed sign-ins counted in memory: per-client rate limit and per-(account, client) lockout.

Shared by the control room (username + password) and the station screen (badge + PIN).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

MAX_TRACKED = 10_000  # clients and (account, client) pairs remembered; the oldest are forgotten first


class SignInGuard:
    """Failed sign-ins in memory, in sliding windows: per client, and per (account, client).

    A client over `client_max` failures (any accounts) in `window_s` is refused until its oldest
    failure leaves the window; `pair_max` failures of one account from one client lock that
    account for that client only, for `lockout_s`, so a stranger cannot lock an officer out from
    the officer's own desk. An account over `account_max` failures in the window (guessing spread
    over many clients) is refused to every client that has not signed in to it before, until the
    window slides; clients that have (the officer's desk) keep signing in. Thread-safe (routes may
    run in a thread pool)."""

    def __init__(self, window_s: float, client_max: int, pair_max: int, lockout_s: float, account_max: int = 50,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.client_max, self.pair_max, self.lockout_s = window_s, client_max, pair_max, lockout_s
        self.account_max, self.clock = account_max, clock
        self._accounts: dict[str, deque[float]] = {}
        self._known: dict[tuple[str, str], None] = {}  # (account, client) that signed in: an ordered set
        self._clients: dict[str, deque[float]] = {}
        self._pairs: dict[tuple[str, str], deque[float]] = {}
        self._locked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def wait_s(self, username: str, client: str) -> float:
        """Seconds until this client may try this account again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            until = self._locked.get((username, client), 0.0)
            recent = self._window(self._clients.get(client), now)
            over = recent[0] + self.window_s - now if len(recent) >= self.client_max else 0.0
            tried = self._window(self._accounts.get(username), now)
            if len(tried) >= self.account_max and (username, client) not in self._known:
                over = max(over, tried[0] + self.window_s - now)
            wait = max(until - now, over, 0.0)
            if wait:
                self.counters["throttled"] += 1
            return wait

    def failed(self, username: str, client: str) -> str:
        """Count one failure: "locked" when it locks the account for this client, "client_limit"
        when the client reaches its limit, "first" for the pair's first failure in the window,
        else "again" (callers audit the first three, and count the rest)."""
        now = self.clock()
        with self._lock:
            self._forget_oldest()
            self.counters["failed"] += 1
            mine = self._window(self._clients.setdefault(client, deque()), now)
            mine.append(now)
            pair = self._window(self._pairs.setdefault((username, client), deque()), now)
            pair.append(now)
            self._window(self._accounts.setdefault(username, deque()), now).append(now)
            if len(pair) >= self.pair_max:
                self._locked[(username, client)] = now + self.lockout_s
                pair.clear()
                self.counters["locks"] += 1
                return "locked"
            if len(mine) == self.client_max:
                return "client_limit"
            return "first" if len(pair) == 1 else "again"

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._pairs.pop((username, client), None)
            self._locked.pop((username, client), None)
            self._forget_oldest()
            self._known[(username, client)] = None

    def _window(self, times: deque[float] | None, now: float) -> deque[float]:
        times = times if times is not None else deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _forget_oldest(self) -> None:
        tables: tuple[dict[Any, Any], ...] = (self._clients, self._pairs, self._locked, self._accounts, self._known)
        for table in tables:
            while len(table) >= MAX_TRACKED:
                table.pop(next(iter(table)))
