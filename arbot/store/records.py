"""Small, typed helpers that write and read the book of record."""

from __future__ import annotations

from sqlmodel import col, select

from arbot.keys.model import KeyPermissions
from arbot.store.database import Store
from arbot.store.tables import PermissionCheckRow


def record_permission_check(
    store: Store, venue: str, exchange: str, key_id: str, permissions: KeyPermissions
) -> PermissionCheckRow:
    """Store one probe result (the verdict and its reason; never the key or secret)."""
    row = PermissionCheckRow(
        venue=venue,
        exchange=exchange,
        key_id=key_id,
        can_read=permissions.read,
        can_trade=permissions.trade,
        can_withdraw=permissions.withdraw,
        can_transfer=permissions.transfer,
        ip_restricted=permissions.ip_restricted,
        verdict=permissions.verdict.value,
        detail=permissions.reason,
    )
    with store.session() as session:
        session.add(row)
    return row


def latest_permission_checks(store: Store) -> dict[str, PermissionCheckRow]:
    """The newest check per venue."""
    latest: dict[str, PermissionCheckRow] = {}
    with store.session() as session:
        rows = session.exec(select(PermissionCheckRow).order_by(col(PermissionCheckRow.id)))
        for row in rows:
            latest[row.venue] = row
    return latest
