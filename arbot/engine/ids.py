"""Client order ids: unique and deterministic per opportunity leg, valid on every venue.

Format (lowercase hex numbers, no separators)::

    arb{run:x}o{opportunity:x}l{leg:x}      entry leg ``leg`` of an opportunity
    arb{run:x}o{opportunity:x}u{n:x}        the ``n``-th unwind order of that opportunity

``run`` is the run id and ``opportunity`` the opportunity's row id in the store, so an
id is fixed before the order exists and is written to the journal before the order is
sent. Unwind orders are numbered in the order the executor creates them (attempt by
attempt), so the same execution always produces the same ids.

Constraints met: OKX ``clOrdId`` (letters and digits only, 1-32 characters, starting
with a letter) and Binance ``newClientOrderId`` (``^[a-zA-Z0-9-_.]{1,36}$``). Ids longer
than 32 characters raise ``ValueError`` (reached only with ids above 16^12).

Limit: uniqueness comes from the database's row ids. Two *different* databases trading
one exchange account would produce the same ids; venues then answer a lookup by client
id with the newest order of that id. One book of record per account, please.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "arb"
MAX_LENGTH = 32
_PATTERN = re.compile(r"^arb([0-9a-f]+)o([0-9a-f]+)([lu])([0-9a-f]+)$")


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """The parts of one of our client order ids."""

    run_id: int
    opportunity_id: int
    purpose: str  # entry | unwind
    index: int  # leg index (entry) or unwind number

    def __str__(self) -> str:
        kind = "l" if self.purpose == "entry" else "u"
        text = f"{PREFIX}{self.run_id:x}o{self.opportunity_id:x}{kind}{self.index:x}"
        if len(text) > MAX_LENGTH:
            raise ValueError(f"client order id {text} is longer than {MAX_LENGTH} characters")
        return text


def entry_id(run_id: int, opportunity_id: int, leg: int) -> str:
    """The id of entry leg ``leg`` (0-based) of an opportunity."""
    _check(run_id, opportunity_id, leg)
    return str(ClientOrderId(run_id, opportunity_id, "entry", leg))


def unwind_id(run_id: int, opportunity_id: int, number: int) -> str:
    """The id of the ``number``-th (0-based) unwind order of an opportunity."""
    _check(run_id, opportunity_id, number)
    return str(ClientOrderId(run_id, opportunity_id, "unwind", number))


def parse(client_order_id: str) -> ClientOrderId | None:
    """The parts of an id this module made, or ``None`` for anyone else's id."""
    match = _PATTERN.match(client_order_id)
    if match is None:
        return None
    run, opportunity, kind, index = match.groups()
    return ClientOrderId(
        int(run, 16), int(opportunity, 16), "entry" if kind == "l" else "unwind", int(index, 16)
    )


def _check(*numbers: int) -> None:
    if any(n < 0 for n in numbers):
        raise ValueError("ids are built from non-negative numbers")
