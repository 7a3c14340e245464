"""Logs are readable or JSON, and a registered secret never reaches any sink."""

from __future__ import annotations

import io
import json
from pathlib import Path

from loguru import logger

from arbot.logs import configure_logging
from arbot.redact import mask_url_password, redact, register_secret

CANARY = "CANARY-sk-4f9e2a7c1b"


def test_secret_is_masked_in_messages_and_exceptions(tmp_path: Path) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "logs" / "arbot.log"
    configure_logging("DEBUG", json_lines=False, file=log_file, stream=stream)
    register_secret(CANARY)
    logger.info("signing with {}", CANARY)
    try:
        raise RuntimeError(f"exchange said: bad signature for secret={CANARY}")
    except RuntimeError:
        logger.exception("request failed")
    configure_logging("INFO", stream=io.StringIO())  # closes the file sink
    for text in (stream.getvalue(), log_file.read_text()):
        assert "signing with ***" in text
        assert "bad signature for secret=***" in text
        assert CANARY not in text


def test_json_lines_are_parseable_and_masked() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True, stream=stream)
    register_secret(CANARY)
    logger.bind(venue="okx").warning("key {} rejected", CANARY)
    logger.debug("not shown at INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["record"]["message"] == "key *** rejected"
    assert record["record"]["level"]["name"] == "WARNING"
    assert record["record"]["extra"]["venue"] == "okx"
    assert CANARY not in lines[0]


def test_redaction_masks_overlapping_secrets_whole() -> None:
    register_secret("abcd")
    register_secret("abcdefgh")
    assert redact("x abcdefgh y abcd") == "x *** y ***"
    register_secret("ab")  # too short to mask safely: ignored
    assert redact("ab") == "ab"


def test_url_passwords_are_masked() -> None:
    assert mask_url_password("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url_password("sqlite:///arbot.db") == "sqlite:///arbot.db"
