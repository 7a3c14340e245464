"""Fixtures of the backtest tests (helpers live in ``backtest_support.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backtest_support import LINK, SHARED_DATA


@pytest.fixture(scope="session")
def link_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LINK/USDT snapshots imported as a dataset (skips when the data is absent)."""
    from arbot.feeds.importers import import_books

    folder = SHARED_DATA / LINK
    if not folder.exists():
        pytest.skip(f"{folder} is absent (shared data lives next to the project, not in it)")
    out = tmp_path_factory.mktemp("link") / "books"
    import_books("snapshot-csv", folder, out, depth=10)
    return out
