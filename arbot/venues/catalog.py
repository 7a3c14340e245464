"""Which exchange ids ccxt knows, answered without importing ccxt.

``import ccxt`` costs about 0.3 s; validating a config file must not pay that, so the
catalogue reads ccxt's package folder instead: every exchange ccxt supports has a
module ``ccxt/async_support/<id>.py``.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path


@cache
def known_exchange_ids() -> frozenset[str]:
    """Exchange ids of the installed ccxt (empty if ccxt is not installed)."""
    spec = importlib.util.find_spec("ccxt")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    ids: set[str] = set()
    for location in spec.submodule_search_locations:
        folder = Path(location) / "async_support"
        ids.update(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    ids.discard("base")
    return frozenset(ids)


def is_known_exchange(exchange_id: str) -> bool:
    return exchange_id in known_exchange_ids()
