"""The keystore format: round trips, secrecy at rest, and every way a file can go bad."""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from arbot.keys.credentials import Credentials
from arbot.keys.keystore import MIN_SCRYPT_N, Keystore, KeystoreError
from arbot.redact import redact

FAST_N = MIN_SCRYPT_N  # the format allows it; tests use it for speed
PASS = SecretStr("correct horse battery")
CANARY_KEY = "CANARYkey-5f1d2c3b4a69788776"
CANARY_SECRET = "CANARYsecret-9e8d7c6b5a4f3e2d1c"


def creds(
    key: str = CANARY_KEY, secret: str = CANARY_SECRET, password: str | None = None
) -> Credentials:
    return Credentials(
        api_key=SecretStr(key),
        secret=SecretStr(secret),
        password=SecretStr(password) if password else None,
    )


def make_store(path: Path) -> Keystore:
    store = Keystore.create(path, PASS, scrypt_n=FAST_N)
    store.add("binance", creds())
    store.add(
        "okx", creds("okx-key-0123456789abcdef", "okx-secret-fedcba9876543210", "Okx-Pass-42")
    )
    store.save()
    return store


def encodings(secret: str) -> list[bytes]:
    """Ways a secret could sit in a file without appearing verbatim."""
    raw = secret.encode()
    found = [
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        secret.encode("utf-16-le"),
        secret.encode("utf-16-be"),
        urllib.parse.quote(secret).encode(),
        json.dumps(secret).encode(),
    ]
    for shift in range(3):  # base64 of the secret at each alignment inside a longer text
        chunk = raw[shift:]
        for encode in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
            found.append(encode(chunk)[:-4].rstrip(b"="))
    return found


def test_round_trip_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    opened = Keystore.open(path, PASS)
    assert opened.venues() == ["binance", "okx"]
    binance = opened.get("binance")
    assert binance is not None
    assert binance.api_key.get_secret_value() == CANARY_KEY
    assert binance.secret.get_secret_value() == CANARY_SECRET
    assert binance.added_at is not None
    okx = opened.get("okx")
    assert okx is not None
    assert okx.password is not None
    assert okx.password.get_secret_value() == "Okx-Pass-42"
    assert binance.key_id == "CANA…8776"


def test_the_file_never_holds_a_secret_in_any_encoding(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    data = path.read_bytes()
    for secret in (CANARY_KEY, CANARY_SECRET, "Okx-Pass-42", PASS.get_secret_value()):
        for encoded in encodings(secret):
            assert encoded not in data, (secret, encoded)
    assert json.loads(data)["format"] == "arbot-keystore"


def test_secrets_are_masked_once_the_keystore_is_open(tmp_path: Path) -> None:
    make_store(tmp_path / "keys.enc")
    Keystore.open(tmp_path / "keys.enc", PASS)
    assert redact(f"signature for {CANARY_SECRET} failed") == "signature for *** failed"
    assert CANARY_KEY not in repr(Keystore.open(tmp_path / "keys.enc", PASS).get("binance"))


def test_wrong_passphrase_is_reported_as_such_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    before = path.read_bytes()
    with pytest.raises(KeystoreError, match="wrong passphrase") as info:
        Keystore.open(path, SecretStr("not the passphrase"))
    assert str(info.value).startswith(f"{path}: ")
    assert len(str(info.value).splitlines()) == 1
    assert path.read_bytes() == before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_flipped_bit_is_detected(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "keys.enc"
    if not path.exists():
        make_store(path)
    original = path.read_bytes()
    envelope = json.loads(original)
    field = data.draw(st.sampled_from(["ciphertext", "check", "nonce", "salt"]))
    holder = (
        envelope["cipher"] if field == "nonce" else envelope["kdf"] if field == "salt" else envelope
    )
    raw = bytearray(base64.b64decode(holder[field]))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    holder[field] = base64.b64encode(bytes(raw)).decode()
    tampered = tmp_path / "tampered.enc"
    tampered.write_text(json.dumps(envelope))
    tampered.chmod(0o600)
    with pytest.raises(KeystoreError) as info:
        Keystore.open(tampered, PASS)
    message = str(info.value)
    expected = (
        "altered or damaged"
        if field == "ciphertext"
        else "wrong passphrase (or the file's header was altered)"
    )
    assert expected in message
    assert message.startswith(f"{tampered}: ")
    assert path.read_bytes() == original


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_a_truncated_file_is_named_and_refused(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "keys.enc"
    if not path.exists():
        make_store(path)
    whole = path.read_bytes()
    cut = data.draw(st.integers(0, len(whole) - 2))
    broken = tmp_path / "broken.enc"
    broken.write_bytes(whole[:cut])
    broken.chmod(0o600)
    with pytest.raises(KeystoreError) as info:
        Keystore.open(broken, PASS)
    assert str(info.value).startswith(f"{broken}: ")
    assert len(str(info.value).splitlines()) == 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
        st.tuples(
            st.text(min_size=1).filter(str.strip),
            st.text(min_size=1).filter(str.strip),
            st.none() | st.text(min_size=1),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_credentials_round_trip_exactly(
    tmp_path: Path, entries: dict[str, tuple[str, str, str | None]]
) -> None:
    path = tmp_path / f"k{uuid.uuid4().hex}.enc"  # a fresh file per example
    store = Keystore.create(path, PASS, scrypt_n=FAST_N)
    for venue, (key, secret, password) in entries.items():
        store.add(venue, creds(key, secret, password))
    store.save()
    opened = Keystore.open(path, PASS)
    assert opened.venues() == sorted(entries)
    for venue, (key, secret, password) in entries.items():
        got = opened.get(venue)
        assert got is not None
        assert got.api_key.get_secret_value() == key.strip()
        assert got.secret.get_secret_value() == secret.strip()
        assert (got.password.get_secret_value() if got.password else None) == (password or None)


def test_group_readable_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    path.chmod(0o640)
    with pytest.raises(KeystoreError) as info:
        Keystore.open(path, PASS)
    assert str(info.value) == (
        f"{path}: readable or writable by group or others (mode 0640); run: chmod 600 {path}"
    )


def test_passphrase_change_re_encrypts_with_a_fresh_salt(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    old_salt = json.loads(path.read_text())["kdf"]["salt"]
    store = Keystore.open(path, PASS)
    new = SecretStr("a different passphrase")
    store.change_passphrase(new)
    store.save()
    assert json.loads(path.read_text())["kdf"]["salt"] != old_salt
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore.open(path, PASS)
    assert Keystore.open(path, new).venues() == ["binance", "okx"]


def test_weakened_kdf_parameters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    make_store(path)
    envelope = json.loads(path.read_text())
    envelope["kdf"]["n"] = 2**10
    path.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError, match="outside the accepted range"):
        Keystore.open(path, PASS)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.enc"
    store = make_store(path)
    before = path.read_bytes()
    store.add("extra", creds("extra-key-0123456789", "extra-secret-0123456789"))

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(KeystoreError, match="cannot write: No space left on device"):
        store.save()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keys.enc"]


def test_short_passphrase_and_duplicate_venue_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="at least 8 characters"):
        Keystore.create(tmp_path / "k.enc", SecretStr("short"))
    store = make_store(tmp_path / "keys.enc")
    with pytest.raises(
        KeystoreError, match=r"binance already has a key .*arbot keys add binance --replace"
    ):
        store.add("binance", creds())
    store.add(
        "binance", creds("rotated-key-0123456789", "rotated-secret-012345"), replace_existing=True
    )
    got = store.get("binance")
    assert got is not None
    assert got.api_key.get_secret_value() == "rotated-key-0123456789"


def test_not_a_keystore(tmp_path: Path) -> None:
    path = tmp_path / "keys.enc"
    path.write_text('{"hello": 1}')
    path.chmod(0o600)
    with pytest.raises(KeystoreError, match="not an arbot keystore"):
        Keystore.open(path, PASS)
