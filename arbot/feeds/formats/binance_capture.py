"""Binance websocket captures (hftbacktest's collector): diffs plus REST snapshots.

One message a line, ``<local receive time ns> <raw JSON>``, gzip or plain text.
``<sym>@depth@100ms`` (or ``@depth``, ``@depth@0ms``) diffs are read; ``@trade``,
``@bookTicker`` and other streams are checked to be JSON and skipped. The REST depth
snapshot is a line holding ``{"lastUpdateId": ..., "bids": ..., "asks": ...}``, wherever
it is in the file: diffs before it are buffered, and the book is rebuilt as Binance
documents it (drop ``u <= lastUpdateId``; the first diff applied must have
``U <= lastUpdateId+1 <= u``; then each ``U`` is the previous ``u + 1``; a gap waits for
a later snapshot, and a gap no snapshot repairs is an error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from arbot.feeds.formats._text import excerpt, is_zero, lines, plain, split_symbol
from arbot.feeds.formats.base import PlainLevel, RawBook, RecordingError

FORMAT = "binance-capture"
VENUE = "binance"
LINE = re.compile(r"^\d+ \{")
"""What the first line of a capture looks like."""


@dataclass(slots=True)
class _Diff:
    line: int
    first: int
    last: int
    exchange_ms: int | None
    bids: list[PlainLevel]
    asks: list[PlainLevel]


@dataclass(slots=True)
class CaptureReader:
    """Yields a capture's book events in the order Binance's procedure applies them:
    each snapshot (``replace``), then the diffs that continue it.

    Events are held back until the first diff names the symbol (a snapshot line does
    not). ``validate_all=False`` skips parsing lines that cannot be book events (for a
    second read of a file already checked whole).
    """

    path: Path
    validate_all: bool = True
    venue: str = VENUE
    exchange_id: str | None = None
    symbol: str | None = None
    snapshots: int = 0
    _synced: bool = False
    _first_after_snapshot: bool = False
    _last_u: int = 0
    _pending: list[_Diff] = field(default_factory=list)
    _held: list[RawBook] = field(default_factory=list)
    _gap: str | None = None

    def __iter__(self) -> Iterator[RawBook]:
        previous_ns: int | None = None
        for number, text in lines(self.path):
            if not text:
                continue
            head, _, body = text.partition(" ")
            if not head.isdigit() or not body.startswith("{"):
                raise RecordingError(
                    f"{self.path}:{number}: expected '<receive time ns> <JSON object>', "
                    f"got {excerpt(text)}"
                )
            time_ns = int(head)
            if previous_ns is not None and time_ns < previous_ns:
                raise RecordingError(
                    f"{self.path}:{number}: receive time {time_ns} is earlier than the previous "
                    f"line's {previous_ns}; lines must be in the order they were received"
                )
            previous_ns = time_ns
            book_line = '"depthUpdate"' in body or '"lastUpdateId"' in body
            if not book_line and not self.validate_all:
                continue
            try:
                message = (
                    json.loads(body) if not book_line else json.loads(body, parse_float=Decimal)
                )
            except ValueError:
                raise RecordingError(
                    f"{self.path}:{number}: expected '<receive time ns> <JSON object>', "
                    f"the JSON is invalid: {excerpt(body)}"
                ) from None
            if not isinstance(message, dict):
                raise RecordingError(f"{self.path}:{number}: the JSON is not an object")
            if not book_line:
                continue
            for event in self._message(number, time_ns, message):
                if self.symbol is None:
                    self._held.append(event)
                    continue
                if self._held:
                    yield from self._release()
                yield event
        if self.snapshots == 0:
            raise RecordingError(
                f"{self.path}: no REST depth snapshot line ('<ns> {{\"lastUpdateId\": ...}}'); "
                "diffs alone cannot rebuild a book: record the snapshot with the stream "
                "(hftbacktest writes one when a session starts)"
            )
        if self.symbol is None:
            raise RecordingError(
                f"{self.path}: no depth diff lines (<symbol>@depth@100ms); nothing to read"
            )
        if self._held:
            yield from self._release()
        if self._gap is not None:
            raise RecordingError(f"{self._gap} and no later snapshot resynchronises the book")

    def _release(self) -> Iterator[RawBook]:
        held, self._held = self._held, []
        for event in held:
            event.symbol = self.symbol or ""
            yield event

    def _message(self, number: int, time_ns: int, message: dict[str, Any]) -> Iterator[RawBook]:
        where = f"{self.path}:{number}"
        data = message.get("data")
        if "stream" in message and isinstance(data, dict):
            stream = str(message["stream"])
            if data.get("e") == "depthUpdate":
                yield from self._diff(number, time_ns, data, where, stream)
            elif "lastUpdateId" in data:
                raise RecordingError(
                    f"{where}: partial book depth stream {stream} is not supported; record "
                    "the diff stream <symbol>@depth@100ms and a REST snapshot"
                )
            return
        if "lastUpdateId" in message and "bids" in message:
            yield from self._snapshot(number, time_ns, message, where)
        elif message.get("e") == "depthUpdate":
            yield from self._diff(number, time_ns, message, where, "")

    @staticmethod
    def _levels(raw: Any, where: str, side: str) -> list[PlainLevel]:
        if not isinstance(raw, list):
            raise RecordingError(f"{where}: '{side}' must be a list of [price, amount] pairs")
        levels = []
        for entry in raw:
            if not isinstance(entry, list) or len(entry) < 2:
                raise RecordingError(
                    f"{where}: '{side}' entry {excerpt(str(entry))} is not a [price, amount] pair"
                )
            price = plain(entry[0], where, "price")
            if is_zero(price):
                raise RecordingError(f"{where}: price {entry[0]} must be positive")
            levels.append((price, plain(entry[1], where, "amount")))
        return levels

    def _snapshot(
        self, number: int, time_ns: int, message: dict[str, Any], where: str
    ) -> Iterator[RawBook]:
        last = message.get("lastUpdateId")
        if not isinstance(last, int) or isinstance(last, bool):
            raise RecordingError(f"{where}: lastUpdateId must be an integer")
        bids = self._levels(message.get("bids"), where, "bids")
        asks = self._levels(message.get("asks"), where, "asks")
        self.snapshots += 1
        if self._synced and self._last_u >= last:
            return  # the diff stream already continues past this snapshot
        yield RawBook(time_ns, where, self.venue, self.symbol or "", True, bids, asks, None, last)
        self._synced = True
        self._first_after_snapshot = True
        self._last_u = last
        self._gap = None
        pending, self._pending = self._pending, []
        for diff in pending:
            yield from self._continue(time_ns, diff)

    def _diff(
        self, number: int, time_ns: int, data: dict[str, Any], where: str, stream: str
    ) -> Iterator[RawBook]:
        if "pu" in data:
            raise RecordingError(
                f"{where}: futures depth stream (has 'pu'); only Binance spot captures are read"
            )
        exchange_id = str(data.get("s") or stream.partition("@")[0].upper())
        if self.exchange_id is None:
            pair = split_symbol(exchange_id)
            if pair is None:
                raise RecordingError(
                    f"{where}: cannot tell base from quote in symbol {exchange_id!r}; known "
                    "quote currencies end the symbol (USDT, BTC, ...)"
                )
            self.exchange_id = exchange_id
            self.symbol = f"{pair[0]}/{pair[1]}"
        elif exchange_id != self.exchange_id:
            raise RecordingError(
                f"{where}: depth diff for {exchange_id!r} in a capture of {self.exchange_id!r}; "
                "one symbol per file"
            )
        first, last = data.get("U"), data.get("u")
        if not (isinstance(first, int) and isinstance(last, int)) or first > last:
            raise RecordingError(f"{where}: a depth diff needs integer update ids U <= u")
        event_ms = data.get("E")
        diff = _Diff(
            number,
            first,
            last,
            event_ms if isinstance(event_ms, int) and not isinstance(event_ms, bool) else None,
            self._levels(data.get("b"), where, "b"),
            self._levels(data.get("a"), where, "a"),
        )
        if self._synced:
            yield from self._continue(time_ns, diff)
        else:
            self._pending.append(diff)

    def _continue(self, time_ns: int, diff: _Diff) -> Iterator[RawBook]:
        if not self._synced:
            self._pending.append(diff)
            return
        if diff.last <= self._last_u:
            return  # older than the book: Binance says drop it
        expected = self._last_u + 1
        if self._first_after_snapshot:
            continues = diff.first <= expected <= diff.last
        else:
            continues = diff.first == expected
        if not continues:
            self._synced = False
            self._pending = [diff]
            wanted = f"U <= {expected} <= u" if self._first_after_snapshot else f"U = {expected}"
            self._gap = (
                f"{self.path}:{diff.line}: update-id gap: diff U={diff.first} u={diff.last} but "
                f"the book is at {self._last_u} (expected {wanted})"
            )
            return
        self._first_after_snapshot = False
        self._last_u = diff.last
        yield RawBook(
            time_ns,
            f"{self.path}:{diff.line}",
            self.venue,
            self.symbol or "",
            False,
            diff.bids,
            diff.asks,
            diff.exchange_ms,
            diff.last,
        )
