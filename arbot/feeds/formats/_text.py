"""Reading recorded text files: gzip or plain, line by line, with one-line errors."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from arbot.feeds.formats.base import RecordingError

# Quote currencies recognised at the end of an exchange symbol; longest match wins.
QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDP",
    "DAI",
    "USD",
    "BTC",
    "ETH",
    "BNB",
    "EUR",
    "TRY",
    "BRL",
    "GBP",
    "JPY",
    "AUD",
)

_PLAIN = re.compile(r"\d+(?:\.\d+)?")


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> IO[str]:
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text without the newline)``; read errors become one-line errors."""
    number = 0
    try:
        with _open_text(path) as fh:
            for text in fh:
                number += 1
                yield number, text.rstrip("\r\n")
    except EOFError:
        raise RecordingError(
            f"{path}: truncated gzip: the compressed data ends after line {number}, before "
            "the end-of-stream marker; the file is incomplete (copy or record it again)"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise RecordingError(
            f"{path}: corrupt gzip data after line {number} ({exc}); copy or record it again"
        ) from None
    except UnicodeDecodeError:
        raise RecordingError(f"{path}:{number + 1}: not UTF-8 text") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None


def head(path: Path) -> str:
    """The first non-blank line of the (decompressed) file, read from its first 64 KiB."""
    try:
        with gzip.open(path, "rb") if is_gzip(path) else path.open("rb") as fh:
            data = fh.read(65536)
    except EOFError:
        raise RecordingError(
            f"{path}: truncated gzip: the compressed data ends before the end-of-stream "
            "marker; the file is incomplete (copy or record it again)"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise RecordingError(
            f"{path}: corrupt gzip data ({exc}); copy or record it again"
        ) from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for line in data.decode("utf-8", "replace").lstrip("\ufeff").splitlines():
        if line.strip():
            return line
    return ""


def excerpt(text: str, size: int = 60) -> str:
    return repr(text if len(text) <= size else text[:size] + "...")


def plain(raw: Any, where: str, what: str) -> str:
    """``raw`` as a plain non-negative decimal string (``"0.00105"``), or a one-line error."""
    if type(raw) is str and _PLAIN.fullmatch(raw):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise RecordingError(f"{where}: {what} {excerpt(str(raw))} is not a decimal number")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RecordingError(
            f"{where}: {what} {excerpt(str(raw))} is not a decimal number"
        ) from None
    if not value.is_finite() or value < 0:
        raise RecordingError(f"{where}: {what} {raw} must be a finite number >= 0")
    return format(value, "f")


def is_zero(plain_text: str) -> bool:
    return not plain_text.strip("0.")


def split_symbol(exchange_id: str) -> tuple[str, str] | None:
    """``BTCUSDT`` -> ``("BTC", "USDT")`` by the longest known quote currency suffix."""
    upper = exchange_id.upper()
    for quote in sorted(QUOTES, key=len, reverse=True):
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    return None
