"""The book of record: runs, opportunities, orders, fills, balances, permission checks,
kill switch.

SQLite by default, PostgreSQL by URL; the schema is created on first use and carries
a version so later releases can migrate it.
"""

from __future__ import annotations

from arbot.store.database import SCHEMA_VERSION, DatabaseInfo, Store, describe_database
from arbot.store.tables import (
    BalanceSnapshotRow,
    FillRow,
    KillSwitchRow,
    OpportunityRow,
    OrderRow,
    PermissionCheckRow,
    RunRow,
    SchemaVersionRow,
)

__all__ = [
    "SCHEMA_VERSION",
    "BalanceSnapshotRow",
    "DatabaseInfo",
    "FillRow",
    "KillSwitchRow",
    "OpportunityRow",
    "OrderRow",
    "PermissionCheckRow",
    "RunRow",
    "SchemaVersionRow",
    "Store",
    "describe_database",
]
