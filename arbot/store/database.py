"""Opening the database: URL handling, schema creation, versioning and migrations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from arbot import __version__
from arbot.errors import StoreError
from arbot.redact import mask_url_password, redact, register_secret, url_password
from arbot.store._types import utcnow
from arbot.store.tables import ALL_TABLES, SchemaVersionRow

SCHEMA_VERSION = 2
"""Bump when a table changes, and add the step to :data:`MIGRATIONS`."""

Migration = Callable[[Connection], None]


def _new_tables_only(connection: Connection) -> None:
    """A version that only adds tables: ``create_all`` (run after the steps) makes them."""


MIGRATIONS: dict[int, Migration] = {
    2: _new_tables_only,  # kill_switch
}
"""``MIGRATIONS[n]`` upgrades a database from version ``n - 1`` to ``n``."""

# An arbitrary constant: serialises schema creation when several daemons share PostgreSQL.
_PG_SCHEMA_LOCK = 0x61726274


def normalise_url(url: str) -> URL:
    """Parse a database URL, defaulting PostgreSQL to the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{mask_url_password(url)}: not a database URL; use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"{parsed.get_backend_name()}: unsupported database; use SQLite or PostgreSQL"
        )
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _make_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if _sqlite_file(url) is None:
            kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError):
        raise StoreError(
            "PostgreSQL support is not installed; run: pip install 'arbot[postgres]'"
        ) from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _connection_error(url: URL, exc: Exception) -> StoreError:
    first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    where = url.render_as_string(hide_password=True)
    hint = (
        "is PostgreSQL running and the database created?"
        if url.get_backend_name() == "postgresql"
        else "does the folder exist and is it writable?"
    )
    return StoreError(redact(f"cannot open database {where}: {first_line}; {hint}"))


class Store:
    """A handle on the book of record. Creates or upgrades the schema when opened."""

    def __init__(self, url: str) -> None:
        register_secret(url_password(url))
        self.url = normalise_url(url)
        sqlite_file = _sqlite_file(self.url)
        if sqlite_file is not None and not sqlite_file.parent.is_dir():
            raise StoreError(
                f"cannot create database {sqlite_file}: folder {sqlite_file.parent} does not "
                "exist; create it or change database_url"
            )
        self.engine = _make_engine(self.url)
        try:
            self._prepare_schema()
        except OperationalError as exc:
            self.engine.dispose()
            raise _connection_error(self.url, exc) from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def _prepare_schema(self) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
            version = _read_version(connection)
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.display_url} has schema version {version}, newer than "
                    f"this arbot understands ({SCHEMA_VERSION}); upgrade arbot"
                )
            if version is not None:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](connection)
            SQLModel.metadata.create_all(connection, tables=[t.__table__ for t in ALL_TABLES])  # type: ignore[attr-defined]
            if version != SCHEMA_VERSION:
                connection.execute(
                    SchemaVersionRow.__table__.insert().values(  # type: ignore[attr-defined]
                        version=SCHEMA_VERSION,
                        applied_at=utcnow(),
                        arbot_version=__version__,
                    )
                )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def schema_version(self) -> int | None:
        with self.engine.connect() as connection:
            return _read_version(connection)

    def row_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return _row_counts(connection)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_version(connection: Connection) -> int | None:
    if not inspect(connection).has_table(SchemaVersionRow.__tablename__):
        return None
    result = connection.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
    return int(result) if result is not None else None


def _row_counts(connection: Connection) -> dict[str, int]:
    existing = set(inspect(connection).get_table_names())
    counts = {}
    for table in ALL_TABLES:
        name = str(table.__tablename__)
        if name in existing and name != SchemaVersionRow.__tablename__:
            counts[name] = int(
                connection.execute(select(func.count()).select_from(table.__table__)).scalar_one()  # type: ignore[attr-defined]
            )
    return counts


@dataclass(frozen=True)
class DatabaseInfo:
    """What ``arbot db info`` reports; the URL never shows a password."""

    url: str
    backend: str
    location: str
    exists: bool
    schema_version: int | None
    expected_version: int
    row_counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "backend": self.backend,
            "location": self.location,
            "exists": self.exists,
            "schema_version": self.schema_version,
            "expected_schema_version": self.expected_version,
            "row_counts": self.row_counts,
        }


def describe_database(url: str) -> DatabaseInfo:
    """Inspect a database without creating or changing anything."""
    register_secret(url_password(url))
    parsed = normalise_url(url)
    shown = parsed.render_as_string(hide_password=True)
    sqlite_file = _sqlite_file(parsed)
    if sqlite_file is not None:
        location = str(sqlite_file)
        if not sqlite_file.exists():
            return DatabaseInfo(shown, "sqlite", location, False, None, SCHEMA_VERSION, {})
    elif parsed.get_backend_name() == "sqlite":
        location = "in memory"
    else:
        location = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
    engine = _make_engine(parsed)
    try:
        with engine.connect() as connection:
            version = _read_version(connection)
            counts = _row_counts(connection) if version is not None else {}
    except SQLAlchemyError as exc:
        raise _connection_error(parsed, exc) from None
    finally:
        engine.dispose()
    return DatabaseInfo(
        shown,
        parsed.get_backend_name(),
        location,
        version is not None,
        version,
        SCHEMA_VERSION,
        counts,
    )
