"""Readers of recorded order-book formats that real users already hold.

Each reader streams :class:`RawBook` events (plain decimal strings, as the file wrote
them) in one pass and checks as it goes: a truncated gzip, a wrong header, a bad cell,
time going backwards or a sequence gap raises :class:`RecordingError` naming the file
and line. ``arbot data import`` rebuilds books from these events; the simulator's
replay mode serves them.

| format | module |
|---|---|
| ``snapshot-csv`` | :mod:`arbot.feeds.formats.snapshot_csv` |
| ``binance-capture`` | :mod:`arbot.feeds.formats.binance_capture` |
| ``tardis`` | :mod:`arbot.feeds.formats.tardis` |

(``arbot``, our own dataset, is read by :func:`arbot.feeds.dataset.read_dataset`.)
"""

from __future__ import annotations

from arbot.feeds.formats.base import PlainLevel, RawBook, RecordingError

__all__ = ["PlainLevel", "RawBook", "RecordingError"]
