"""Replay time: the clock a backtest reads, the events scheduled on it, and the asyncio
loop that runs the real executor on it.

:class:`ReplayClock` is the backtest's ``Clock`` (ns since the epoch): the
:class:`~arbot.strategy.context.MarketState`, the risk engine, the strategy's context,
the venues and the event loop all read it, and only the replay moves it, forward only.

:class:`EventQueue` holds the venues' discrete events (an order reaching a venue, its
answer coming back) at exact ns, first in first out among equal times.

:class:`ReplayLoop` is an asyncio event loop whose ``time()`` is the replay clock. The
executor's timeouts (``asyncio.wait``, ``wait_for``) and sleeps are ordinary asyncio
timers on it, so they run in replay time. The loop never waits for the wall clock:
when every task is blocked (nothing ready to run) it calls ``on_idle(next_timer_ns)``
instead of sleeping, and the replay decides what happens next, in time order:

* an event at or before the next asyncio timer: the replay advances the clock to it
  and fires it (a book moment, an order arrival), which wakes some tasks up;
* otherwise the loop advances the clock to its next timer, which then fires.

So "run until every task is blocked on the future" is exact: time only moves while
nothing is runnable. The same inputs give the same sequence of callbacks, and no
result depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import selectors
from collections.abc import Callable, Iterator


class ReplayClock:
    """Replay time in ns since the epoch; call it to read it. Only moves forward."""

    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance_to(self, ns: int) -> None:
        """Move to ``ns``; a time in the past is ignored (the clock never goes back)."""
        self.now_ns = max(self.now_ns, ns)


class EventQueue:
    """Callbacks due at exact replay times; equal times fire in the order scheduled."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq: Iterator[int] = itertools.count()

    def call_at(self, ns: int, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (ns, next(self._seq), callback))

    def next_ns(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[int, Callable[[], None]]:
        ns, _, callback = heapq.heappop(self._heap)
        return ns, callback

    def __len__(self) -> int:
        return len(self._heap)


class ReplayStalled(RuntimeError):
    """Every task waits for something no event and no timer can bring (a bug)."""


IdleHook = Callable[[int | None], bool]
"""``on_idle(next_timer_ns)``: fire what is due at or before the loop's next timer
(``None``: the loop has no timer) and return ``True``, or return ``False`` when nothing
is; see :class:`ReplayLoop`."""


class _IdleSelector(selectors.SelectSelector):
    """Never blocks: a wait with a timeout means every task is blocked, so the loop is idle."""

    def __init__(self, on_idle: Callable[[float | None], None]) -> None:
        super().__init__()
        self._on_idle = on_idle
        self._polls = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            self._on_idle(timeout)
            return []
        # Only the loop's own wake-up pipe is registered, and nothing waits on it: a
        # system call on every pass of the loop (tens per execution) is wasted.
        self._polls += 1
        if self._polls & 63:
            return []
        return super().select(0)


class ReplayLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on replay time; see the module docstring.

    ``time()`` is seconds since the clock's value when the loop was built (small
    numbers keep float timers precise to well under a microsecond).
    """

    def __init__(self, clock: ReplayClock, on_idle: IdleHook) -> None:
        self.clock = clock
        self._origin_ns = clock.now_ns
        self._hook = on_idle
        super().__init__(_IdleSelector(self._idle))

    def time(self) -> float:
        return (self.clock.now_ns - self._origin_ns) / 1e9

    def _idle(self, timeout: float | None) -> None:
        clock = self.clock
        # Round up so the timer is due once the clock is there (the loop also allows
        # its clock resolution, 1 ns, for float error).
        timer_ns = None if timeout is None else clock.now_ns + max(1, math.ceil(timeout * 1e9))
        if self._hook(timer_ns):
            return
        if timer_ns is None:
            raise ReplayStalled("every task waits and no event or timer is left to wake one up")
        clock.advance_to(timer_ns)


__all__ = ["EventQueue", "IdleHook", "ReplayClock", "ReplayLoop", "ReplayStalled"]
