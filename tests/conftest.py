"""Fixtures shared by the whole suite: database URLs and a clean secret registry."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbot.redact import forget_all_secrets

PG_ENV = "ARBOT_TEST_DATABASE_URL"

pytest_plugins = ["arbot.testing.plugin"]


def _backends() -> list[object]:
    params: list[object] = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=pytest.mark.skipif(
                not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to run PostgreSQL tests"
            ),
        )
    )
    return params


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'arbot.db'}"
        return
    from sqlalchemy import create_engine, text

    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _clean_secrets() -> Iterator[None]:
    forget_all_secrets()
    yield
    forget_all_secrets()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no ARBOT_* settings from the developer's shell (the test URL aside)."""
    for name in list(os.environ):
        if name.upper().startswith("ARBOT_") and name not in (PG_ENV, "ARBOT_TEST_SHARED_DATA"):
            monkeypatch.delenv(name)


CANARY = "CANARY"
"""Every canary secret in the suite contains this; none may reach captured output."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured stdout, stderr or log contains a canary secret."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.passed:
        leaked = [name for name, content in report.sections if CANARY in content]
        if leaked:
            report.outcome = "failed"
            report.longrepr = f"a canary secret appeared in {', '.join(leaked)}"
