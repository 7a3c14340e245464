"""One websocket client of the simulator: a bounded outbox drained by its own task.

Protocols push already-serialised text with :meth:`WsConnection.push`; the sender task
applies the venue's websocket faults (delay, stall) and drops a client that falls too
far behind, as real exchanges disconnect slow consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from aiohttp import web

from arbot.sim.venue import SimVenue

MAX_BACKLOG = 50_000


class WsConnection:
    def __init__(self, ws: web.WebSocketResponse, venue: SimVenue) -> None:
        self.ws = ws
        self.venue = venue
        self._outbox: deque[tuple[float, str]] = deque()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._sender: asyncio.Task[None] | None = None
        self.closed = False
        self.sent = 0

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"sim-ws-{self.venue.name}")

    def push(self, text: str) -> None:
        if self.closed:
            return
        if len(self._outbox) >= MAX_BACKLOG:
            self.close_soon()
            return
        self._outbox.append((self._loop.time(), text))
        self._wake.set()

    def close_soon(self) -> None:
        """Close from synchronous code (a fault, a slow consumer)."""
        if not self.closed:
            self.closed = True
            self._wake.set()
            self._loop.create_task(self.ws.close())

    async def stop(self) -> None:
        self.closed = True
        self._wake.set()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        await self.ws.close()

    async def _send_loop(self) -> None:
        faults = self.venue.faults
        while not self.closed:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            if faults.ws_stall:
                await self.venue.faults_changed()
                continue
            queued_at, text = self._outbox[0]
            if faults.ws_delay_ms:
                wait = queued_at + faults.ws_delay_ms / 1000.0 - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the injected network delay itself
                    continue
            self._outbox.popleft()
            try:
                await self.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                self.closed = True
                return
            self.sent += 1
