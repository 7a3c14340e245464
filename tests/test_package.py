"""The public surface of ``arbot`` and the promise that it imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import arbot


def test_public_names_are_sorted_and_resolve() -> None:
    assert arbot.__all__ == sorted(arbot.__all__)
    assert set(arbot.__all__) == {*arbot._EXPORTS, "__version__"}
    for name in arbot.__all__:
        assert getattr(arbot, name) is not None


def test_importing_arbot_and_the_cli_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, arbot, arbot.model, arbot.cli.app; "
        "heavy = [m for m in ('ccxt', 'sqlalchemy', 'sqlmodel', 'pydantic_settings', 'loguru') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_config_and_store_do_not_import_ccxt() -> None:
    code = "import sys, arbot.config, arbot.store; print('ccxt' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
