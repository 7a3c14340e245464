"""Ask an exchange what an API key may do, and read the answer into one value.

arbot trades only with keys proven unable to move funds out, so every exchange gets a
*probe*: the ccxt implicit method(s) that return the key's rights, and a pure parser
that turns the documented answer into :class:`~arbot.keys.model.KeyPermissions`.

The parsers fail closed. A token or field they do not know lands in ``unknown``; a
field the verdict needs and the answer lacks stays ``None``; anything that can move
funds out (withdraw, transfer to another account or sub-account, P2P, pay) is ``True``.
Either way the verdict is never ``trade_only`` unless the answer proves it.

What counts as a transfer *out* (``transfer=True``): moving funds to another account,
sub-accounts included. Moving them between the same account's own wallets is not out.
Where an exchange grants a transfer right as its own switch, any such switch counts,
even one its docs describe as own-wallet only: a trading bot needs none of them, and
turning one off costs the operator a tick box. Where the right comes bundled with
trading and cannot be switched off (OKX, HTX), it is judged by where the money can go;
see those parsers.

This module never imports ccxt: :func:`probe_permissions` works on the exchange object
it is handed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arbot.keys.model import KeyPermissions
from arbot.redact import MASK, redact

__all__ = [
    "PROBES",
    "Call",
    "Probe",
    "parse_binance",
    "parse_bitfinex",
    "parse_bitget",
    "parse_bybit",
    "parse_coinbase",
    "parse_htx",
    "parse_kraken",
    "parse_kucoin",
    "parse_okx",
    "probe_permissions",
]

# What a permission token or flag grants. A known token with no effect is harmless.
READ = "read"
TRADE = "trade"
WITHDRAW = "withdraw"
TRANSFER = "transfer"

Effects = frozenset[str]
NONE: Effects = frozenset()
_R: Effects = frozenset({READ})
_T: Effects = frozenset({TRADE})
_W: Effects = frozenset({WITHDRAW})
_X: Effects = frozenset({TRANSFER})
_WX: Effects = frozenset({WITHDRAW, TRANSFER})

# Fields whose values identify a key; masked in ``raw`` so the record holds no credential.
_KEY_FIELDS = frozenset({"apiKey", "accessKey", "secret"})
_MAX_NOTE = 60


class _Reading:
    """What one parser has learnt so far; :meth:`result` makes the value."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.read: bool | None = None
        self.trade: bool | None = None
        self.withdraw: bool | None = None
        self.transfer: bool | None = None
        self.ip_restricted: bool | None = None
        self.unknown: list[str] = []
        self.problems: list[str] = []

    def unknown_field(self, name: Any) -> None:
        self.unknown.append(f"field {_short(name)}")

    def unknown_value(self, name: str, value: Any) -> None:
        self.unknown.append(f"{name}={_short(value)}")

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def result(self) -> KeyPermissions:
        return KeyPermissions(
            read=self.read,
            trade=self.trade,
            withdraw=self.withdraw,
            transfer=self.transfer,
            ip_restricted=self.ip_restricted,
            raw=_record(self.response),
            unknown=tuple(dict.fromkeys(self.unknown)),
            problem="; ".join(self.problems) or None,
        )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_NOTE else text[: _MAX_NOTE - 1] + "…"


def _record(response: Any) -> Mapping[str, Any]:
    """The answer as kept in ``raw``: a mapping, key ids masked, never the input object."""
    try:
        copy = _masked(response)
    except RecursionError:
        return {"response": "<too deeply nested to keep>"}
    return copy if isinstance(copy, dict) else {"response": copy}


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (_mask_id(v) if k in _KEY_FIELDS and isinstance(v, str) else _masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _mask_id(value: str) -> str:
    return MASK + value[-4:] if len(value) >= 12 else MASK if value else value


# ----- shared readers ---------------------------------------------------------------


_MISSING: Any = object()


def _unwrap(reading: _Reading, response: Any, *, code: str, ok: str | int, body: str) -> Any:
    """The payload of a ``{code: ok, body: …}`` envelope, or ``_MISSING`` (with a problem)."""
    if not isinstance(response, Mapping):
        reading.problem(f"answer is not an object ({type(response).__name__})")
        return _MISSING
    status = response.get(code)
    if isinstance(status, bool) or status != ok:
        reading.problem(f"answer {code} is {_short(status)}, not {ok!r}")
        return _MISSING
    if body not in response:
        reading.problem(f"answer has no {body!r}")
        return _MISSING
    return response[body]


def _object(reading: _Reading, value: Any, what: str) -> Mapping[str, Any] | None:
    if value is _MISSING:
        return None
    if isinstance(value, Mapping):
        return value
    reading.problem(f"{what} is not an object ({type(value).__name__})")
    return None


def _check_fields(reading: _Reading, obj: Mapping[Any, Any], known: Iterable[str]) -> None:
    """Every field not in ``known`` is unknown: a new field may be a new right."""
    allowed = set(known)
    for name in obj:
        if name not in allowed:
            reading.unknown_field(name)


def _apply_tokens(
    reading: _Reading,
    tokens: Iterable[Any],
    table: Mapping[str, Effects],
    *,
    scope: str = "",
) -> set[str]:
    """The effects of a complete token list; unknown tokens are recorded."""
    granted: set[str] = set()
    for token in tokens:
        if not isinstance(token, str):
            reading.unknown.append(f"{scope}{_short(token)}")
            continue
        name = token.strip()
        if not name:
            continue
        effects = table.get(name.lower())
        if effects is None:
            reading.unknown.append(f"{scope}{_short(name)}")
        else:
            granted |= effects
    return granted


def _settle(reading: _Reading, granted: set[str]) -> None:
    """A complete token list: what it does not grant, the key cannot do."""
    reading.read = READ in granted
    reading.trade = TRADE in granted
    reading.withdraw = WITHDRAW in granted
    reading.transfer = TRANSFER in granted


def _bool_flags(
    reading: _Reading,
    obj: Mapping[str, Any],
    table: Mapping[str, Effects],
) -> dict[str, bool | None]:
    """Per effect: True if any of its flags is true, False if all are present and false,
    None otherwise. Non-boolean values are unknown."""
    seen: dict[str, list[bool | None]] = {}
    for name, effects in table.items():
        if name not in obj:
            value: bool | None = None
        elif isinstance(obj[name], bool):
            value = obj[name]
        else:
            reading.unknown_value(name, obj[name])
            value = None
        for effect in effects:
            seen.setdefault(effect, []).append(value)
    out: dict[str, bool | None] = {}
    for effect, values in seen.items():
        if any(v is True for v in values):
            out[effect] = True
        elif all(v is False for v in values):
            out[effect] = False
        else:
            out[effect] = None
    return out


def _ip_list(reading: _Reading, name: str, value: Any) -> bool | None:
    """A comma-separated IP string: non-empty means the key is bound to IPs."""
    if isinstance(value, str):
        return bool(value.strip())
    if value is not None:
        reading.unknown_value(name, value)
    return None


# ----- binance ----------------------------------------------------------------------

# GET /sapi/v1/account/apiRestrictions, one object of flags.
# https://developers.binance.com/docs/wallet/account/api-key-permission
_BINANCE_FLAGS: Mapping[str, Effects] = {
    "enableReading": _R,
    "enableFixReadOnly": _R,
    "enableSpotAndMarginTrading": _T,
    "enableMargin": _T,
    "enableFutures": _T,
    "enableVanillaOptions": _T,
    "enableFixApiTrade": _T,
    "enablePortfolioMarginTrading": _T,
    "enableWithdrawals": _W,
    # "transfer funds between your master account and your sub account": out.
    "enableInternalTransfer": _X,
    # The universal-transfer API moves funds between the key owner's own wallets, which
    # by itself is not "out"; it is counted anyway because it is a separate switch a
    # trading key never needs (see the module docstring).
    "permitsUniversalTransfer": _X,
}
_BINANCE_OTHER = ("ipRestrict", "createTime", "tradingAuthorityExpirationTime")


def parse_binance(response: Any) -> KeyPermissions:
    """Binance ``apiRestrictions``: one boolean flag per right."""
    reading = _Reading(response)
    obj = _object(reading, response, "answer")
    if obj is not None:
        _check_fields(reading, obj, [*_BINANCE_FLAGS, *_BINANCE_OTHER])
        flags = _bool_flags(reading, obj, _BINANCE_FLAGS)
        reading.read = flags[READ]
        reading.trade = flags[TRADE]
        reading.withdraw = flags[WITHDRAW]
        reading.transfer = flags[TRANSFER]
        ip = obj.get("ipRestrict")
        if isinstance(ip, bool):
            reading.ip_restricted = ip
        elif ip is not None:
            reading.unknown_value("ipRestrict", ip)
    return reading.result()


# ----- okx --------------------------------------------------------------------------

# GET /api/v5/account/config → {"code": "0", "data": [config], "msg": ""}.
# https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration
_OKX_TOKENS: Mapping[str, Effects] = {"read_only": _R, "trade": _T, "withdraw": _W}
# fmt: off
_OKX_FIELDS = frozenset({
    "uid", "mainUid", "acctLv", "acctStpMode", "posMode", "autoLoan", "greeksType",
    "feeType", "level", "levelTmp", "ctIsoMode", "mgnIsoMode", "spotOffsetType",
    "roleType", "traderInsts", "spotRoleType", "spotTraderInsts", "opAuth", "kycLv",
    "label", "ip", "perm", "liquidationGear", "enableSpotBorrow", "spotBorrowAutoRepay",
    "type", "settleCcy", "settleCcyList",
})
# fmt: on


def parse_okx(response: Any) -> KeyPermissions:
    """OKX account config: ``perm`` is ``read_only``/``trade``/``withdraw``, ``ip`` the
    bound addresses.

    Transfer: OKX has no transfer token. ``POST /api/v5/asset/transfer`` needs only the
    Trade right and moves funds between the funding and trading accounts and between the
    master account and its own sub-accounts (sub to sub only under the same master).
    A Trade key can also create sub-account keys, but only ``read_only``/``trade`` ones.
    So a key without ``withdraw`` cannot send funds outside the master account's own
    tree, and it cannot be switched off: ``transfer`` is False. Counting it would make
    every OKX trading key unsafe. A deliberate reading, flagged for review.
    """
    reading = _Reading(response)
    data = _unwrap(reading, response, code="code", ok="0", body="data")
    if data is not _MISSING:
        if not isinstance(data, list) or len(data) != 1:
            reading.problem("answer data is not a list of exactly one config")
        else:
            config = _object(reading, data[0], "config")
            if config is not None:
                _check_fields(reading, config, _OKX_FIELDS)
                perm = config.get("perm")
                if isinstance(perm, str):
                    _settle(reading, _apply_tokens(reading, perm.split(","), _OKX_TOKENS))
                else:
                    reading.unknown_value("perm", perm)
                reading.ip_restricted = _ip_list(reading, "ip", config.get("ip"))
    return reading.result()


# ----- bybit ------------------------------------------------------------------------

# GET /v5/user/query-api → {"retCode": 0, "result": {...}}.
# https://bybit-exchange.github.io/docs/v5/user/apikey-info
_BYBIT_TOKENS: Mapping[str, Mapping[str, Effects]] = {
    "contracttrade": {"order": _T, "position": _T},
    "spot": {"spottrade": _T},
    "options": {"optionstrade": _T},
    "derivatives": {"derivativestrade": _T},
    # Between the account's own wallets, but a switch (and it lets a master key create
    # sub-account keys); sub-account transfers are out; Withdraw is a withdrawal.
    "wallet": {
        "accounttransfer": _X,
        "submembertransfer": _X,
        "submembertransferlist": _X,
        "withdraw": _W,
    },
    "exchange": {"exchangehistory": NONE},
    "earn": {"earn": NONE},
    "affiliate": {"affiliate": NONE},
    # P2P orders release coins to a counterparty, Bybit Pay pays a merchant, fiat
    # convert pays out fiat: all move funds to someone else.
    "fiatp2p": {"fiatp2porder": _X, "advertising": _X},
    "fiatbybitpay": {"faitpayorder": _X, "fiatpayorder": _X},
    "fiatconvertbroker": {"fiatconvertbrokerorder": _X},
    # Documented as always empty (or without a token list): any token is unknown.
    "nft": {},
    "blocktrade": {},
    "copytrading": {},
}
# fmt: off
_BYBIT_FIELDS = frozenset({
    "id", "note", "apiKey", "readOnly", "secret", "permissions", "ips", "type",
    "deadlineDay", "expiredAt", "createdAt", "unified", "uta", "userID", "inviterID",
    "vipLevel", "mktMakerLevel", "affiliateID", "rsaPublicKey", "isMaster", "parentUid",
    "kycLevel", "kycRegion",
})
# fmt: on


def parse_bybit(response: Any) -> KeyPermissions:
    """Bybit key info: ``permissions`` maps categories to token lists, ``readOnly`` is
    1 for read-only keys, ``ips`` is ``["*"]`` when the key is not bound."""
    reading = _Reading(response)
    result = _object(
        reading, _unwrap(reading, response, code="retCode", ok=0, body="result"), "result"
    )
    if result is not None:
        _check_fields(reading, result, _BYBIT_FIELDS)
        reading.read = True  # any key may read its own info, and this one just did
        perms = result.get("permissions")
        granted: set[str] = set()
        complete = False
        if isinstance(perms, Mapping):
            for category, tokens in perms.items():
                table = _BYBIT_TOKENS.get(str(category).lower())
                if table is None:
                    reading.unknown_field(f"permissions.{_short(category)}")
                    continue
                if not isinstance(tokens, list):
                    reading.unknown_value(f"permissions.{category}", tokens)
                    continue
                granted |= _apply_tokens(reading, tokens, table, scope=f"{category}:")
            wallet = next((v for k, v in perms.items() if str(k).lower() == "wallet"), None)
            complete = isinstance(wallet, list)
        else:
            reading.unknown_value("permissions", perms)
        read_only = result.get("readOnly")
        if WITHDRAW in granted:
            reading.withdraw = True
        elif complete:
            reading.withdraw = False
        if TRANSFER in granted:
            reading.transfer = True
        elif complete:
            reading.transfer = False
        if read_only == 1 and not isinstance(read_only, bool):
            reading.trade = False
        elif read_only == 0 and not isinstance(read_only, bool):
            reading.trade = TRADE in granted if isinstance(perms, Mapping) else None
        else:
            reading.unknown_value("readOnly", read_only)
        reading.ip_restricted = _bybit_ips(reading, result.get("ips"))
    return reading.result()


def _bybit_ips(reading: _Reading, ips: Any) -> bool | None:
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        if ips is not None:
            reading.unknown_value("ips", ips)
        return None
    if not ips:
        return None
    return "*" not in ips


# ----- coinbase ---------------------------------------------------------------------

# GET /api/v3/brokerage/key_permissions, one object.
# https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/data-api/get-api-key-permissions
_COINBASE_FLAGS: Mapping[str, Effects] = {
    "can_view": _R,
    "can_trade": _T,
    # "deposit/withdrawal permissions"; Transfer sends funds on and off platform.
    "can_transfer": _WX,
}
_COINBASE_OTHER = ("portfolio_uuid", "portfolio_type")


def parse_coinbase(response: Any) -> KeyPermissions:
    """Coinbase Advanced Trade key permissions: three booleans. The key's IP allowlist
    is not reported, so ``ip_restricted`` stays None."""
    reading = _Reading(response)
    obj = _object(reading, response, "answer")
    if obj is not None:
        _check_fields(reading, obj, [*_COINBASE_FLAGS, *_COINBASE_OTHER])
        flags = _bool_flags(reading, obj, _COINBASE_FLAGS)
        reading.read = flags[READ]
        reading.trade = flags[TRADE]
        reading.withdraw = flags[WITHDRAW]
        reading.transfer = flags[TRANSFER]
    return reading.result()


# ----- kraken -----------------------------------------------------------------------

# POST /0/private/GetApiKeyInfo → {"error": [], "result": {...}}.
# https://docs.kraken.com/api-reference/account-data/get-api-key-info
# The doc example shows query-funds, withdraw-funds, query-open-trades, modify-trades;
# the other spellings are the ones several independent Kraken clients check for.
_KRAKEN_TOKENS: Mapping[str, Effects] = {
    "query-funds": _R,
    "query-open-trades": _R,
    "query-closed-trades": _R,
    "query-ledger": _R,
    "export-data": _R,
    "modify-trades": _T,
    "close-trades": NONE,
    "create-ws-token": NONE,
    "add-funds": NONE,  # deposits
    "earn-funds": NONE,  # allocate to Earn within the account
    # Withdraw Funds also gates AccountTransfer (master <-> subaccount) and
    # WalletTransfer, so it is the transfer right as well.
    "withdraw-funds": _WX,
    "add-withdraw-address": _W,
    "update-withdraw-address": _W,
}
# fmt: off
_KRAKEN_FIELDS = frozenset({
    "apiKeyName", "apiKey", "nonce", "nonceWindow", "permissions", "iban", "validUntil",
    "queryFrom", "queryTo", "createdTime", "modifiedTime", "ipAllowlist", "lastUsed",
})
# fmt: on


def parse_kraken(response: Any) -> KeyPermissions:
    """Kraken key info: ``permissions`` lists the granted rights, ``ipAllowlist`` the
    bound addresses. Transfers need ``withdraw-funds``, so it counts as transfer too."""
    reading = _Reading(response)
    if isinstance(response, Mapping) and response.get("error") != []:
        reading.problem(f"answer error is {_short(response.get('error'))}")
    elif isinstance(response, Mapping) and "result" not in response:
        reading.problem("answer has no 'result'")
    elif isinstance(response, Mapping):
        result = _object(reading, response["result"], "result")
        if result is not None:
            _check_fields(reading, result, _KRAKEN_FIELDS)
            perms = result.get("permissions")
            if isinstance(perms, list):
                _settle(reading, _apply_tokens(reading, perms, _KRAKEN_TOKENS))
            else:
                reading.unknown_value("permissions", perms)
            allow = result.get("ipAllowlist")
            if isinstance(allow, list):
                reading.ip_restricted = bool(allow)
            elif allow is not None:
                reading.unknown_value("ipAllowlist", allow)
    else:
        reading.problem(f"answer is not an object ({type(response).__name__})")
    return reading.result()


# ----- kucoin -----------------------------------------------------------------------

# GET /api/v1/user/api-key → {"code": "200000", "data": {...}}.
# https://www.kucoin.com/docs-new/rest/account-info/account-funding/get-apikey-info
# Documented values: General, Spot, Margin, Futures, InnerTransfer, Transfer, Earn.
_KUCOIN_TOKENS: Mapping[str, Effects] = {
    "general": _R,
    "spot": _T,
    "margin": _T,
    "futures": _T,
    "earn": NONE,  # subscribe/redeem Earn products within the account
    # InnerTransfer is the "Flex Transfer" right: within the account and between the
    # master and its sub-accounts (PARENT_TO_SUB, SUB_TO_PARENT) - out.
    "innertransfer": _X,
    "flextransfers": _X,
    # "Transfer" is how the Withdrawal right is reported (the documented list has no
    # "Withdrawal"); both spellings are a withdrawal.
    "transfer": _WX,
    "withdrawal": _WX,
}
# fmt: off
_KUCOIN_FIELDS = frozenset({
    "remark", "apiKey", "apiVersion", "permission", "ipWhitelist", "createdAt", "uid",
    "isMaster", "subName",
})
# fmt: on


def parse_kucoin(response: Any) -> KeyPermissions:
    """KuCoin key info: ``permission`` is a comma-separated list, ``ipWhitelist`` the
    (masked) bound addresses."""
    reading = _Reading(response)
    data = _unwrap(reading, response, code="code", ok="200000", body="data")
    data = _object(reading, data, "data")
    if data is not None:
        _check_fields(reading, data, _KUCOIN_FIELDS)
        permission = data.get("permission")
        if isinstance(permission, str):
            _settle(reading, _apply_tokens(reading, permission.split(","), _KUCOIN_TOKENS))
        else:
            reading.unknown_value("permission", permission)
        reading.ip_restricted = _ip_list(reading, "ipWhitelist", data.get("ipWhitelist"))
    return reading.result()


# ----- bitget -----------------------------------------------------------------------

# GET /api/v2/spot/account/info → {"code": "00000", "data": {...}}.
# https://www.bitget.com/api-doc/spot/account/Get-Account-Info
_BITGET_TOKENS: Mapping[str, Effects] = {
    # read only
    **dict.fromkeys(
        ("coor", "cpor", "stor", "smor", "ttor", "wtor", "taxr", "chor", "p2pr", "pllr"), _R
    ),
    "readonly": _R,  # the doc example's spelling
    # read and write
    **dict.fromkeys(("coow", "cpow", "stow", "smow", "ttow"), _T),
    "trade": _T,  # the doc example's spelling
    "taxw": NONE,
    "pllw": NONE,  # pledge loans: borrow against own collateral, into the account
    "wwow": _W,
    "withdraw": _W,
    # Wallet transfer moves coins "between accounts": a switch, counted (module doc).
    "wtow": _X,
    "transfer": _X,
    # Sub-account management creates sub-accounts and their keys, with wallet-transfer
    # rights: fail closed.
    "chow": _X,
    # P2P trading releases coins to a counterparty.
    "p2p": _X,
}
# fmt: off
_BITGET_FIELDS = frozenset({
    "userId", "inviterId", "ips", "authorities", "parentId", "traderType",
    "channelCode", "channel", "regisTime",
})
# fmt: on


def parse_bitget(response: Any) -> KeyPermissions:
    """Bitget account info: ``authorities`` lists the key's rights, ``ips`` its bound
    addresses."""
    reading = _Reading(response)
    data = _unwrap(reading, response, code="code", ok="00000", body="data")
    data = _object(reading, data, "data")
    if data is not None:
        _check_fields(reading, data, _BITGET_FIELDS)
        authorities = data.get("authorities")
        if isinstance(authorities, list):
            _settle(reading, _apply_tokens(reading, authorities, _BITGET_TOKENS))
        else:
            reading.unknown_value("authorities", authorities)
        reading.ip_restricted = _ip_list(reading, "ips", data.get("ips"))
    return reading.result()


# ----- htx --------------------------------------------------------------------------

# GET /v2/user/api-key?uid=…&accessKey=… → {"code": 200, "data": [entry, …]}.
# https://www.htx.com/en-us/opend/newApiPages/?id=7ec52c92-7773-11ed-9966-0242ac110003
_HTX_TOKENS: Mapping[str, Effects] = {"readonly": _R, "trade": _T, "withdraw": _W}
# fmt: off
_HTX_FIELDS = frozenset({
    "accessKey", "note", "permission", "ipAddresses", "validDays", "status",
    "createTime", "updateTime",
})
# fmt: on


def parse_htx(response: Any) -> KeyPermissions:
    """HTX API-key query: ``permission`` is ``readOnly``/``trade``/``withdraw``,
    ``ipAddresses`` the bound addresses.

    Transfer: HTX has no transfer token. Its transfer endpoints (``/v1/subuser/transfer``,
    ``/v1/account/transfer``) need only Trade and move funds between the parent and its
    own sub-users (and between the account's own wallets), never to another user; the
    right cannot be switched off. As with OKX, ``transfer`` is False without ``withdraw``.

    The probe passes the key as ``accessKey`` so one entry comes back. Several entries
    cannot be told apart: then a withdraw right in any of them makes the answer unsafe,
    and otherwise it is unverified.
    """
    reading = _Reading(response)
    data = _unwrap(reading, response, code="code", ok=200, body="data")
    if data is _MISSING:
        return reading.result()
    if not isinstance(data, list) or not data:
        reading.problem("answer data is not a non-empty list of keys")
    elif len(data) == 1:
        _read_htx_entry(reading, data[0])
    else:
        reading.problem(f"HTX listed {len(data)} keys; cannot tell which one is this key")
        entries = [_read_htx_entry(_Reading(entry), entry) for entry in data]
        if any(entry.withdraw for entry in entries):
            reading.withdraw = True
        if any(entry.transfer for entry in entries):
            reading.transfer = True
    return reading.result()


def _read_htx_entry(reading: _Reading, entry: Any) -> _Reading:
    obj = _object(reading, entry, "key entry")
    if obj is None:
        return reading
    _check_fields(reading, obj, _HTX_FIELDS)
    permission = obj.get("permission")
    if isinstance(permission, str):
        _settle(reading, _apply_tokens(reading, permission.split(","), _HTX_TOKENS))
    else:
        reading.unknown_value("permission", permission)
    reading.ip_restricted = _ip_list(reading, "ipAddresses", obj.get("ipAddresses"))
    status = obj.get("status")
    if status == "expired":
        reading.problem("the key has expired")
    elif status != "normal":
        reading.unknown_value("status", status)
    return reading


def _htx_key_params(api_key: str, answers: Sequence[Any]) -> Mapping[str, Any]:
    """``uid`` from the ``/v2/user/uid`` answer, and the key itself as ``accessKey``."""
    first = answers[0] if answers else None
    uid = first.get("data") if isinstance(first, Mapping) else None
    ok = isinstance(first, Mapping) and first.get("code") == 200
    if not ok or isinstance(uid, bool) or not isinstance(uid, int) or uid <= 0:
        raise ValueError("v2PrivateGetUserUid returned no uid")
    return {"uid": uid, "accessKey": api_key}


# ----- bitfinex ---------------------------------------------------------------------

# POST /v2/auth/r/permissions → [[scope, read 0/1, write 0/1], …]; the page documents
# the schema only (no example).
# https://docs.bitfinex.com/reference/key-permissions
_BITFINEX_SCOPES: Mapping[str, tuple[Effects, Effects | None]] = {
    # scope: (effects of read=1, effects of write=1; None = write has no known meaning)
    "account": (_R, None),
    "history": (_R, None),
    "orders": (_R, _T),
    "positions": (_R, _T),
    "funding": (_R, NONE),  # funding offers: lending on the margin-funding book
    "settings": (_R, NONE),
    # POST /v2/auth/w/transfer takes email_dst / user_id_dst: to a sub- or master account.
    "wallets": (_R, _X),
    "withdraw": (_R, _W),
    "ui_withdraw": (_R, _W),
    # Bitfinex Pay: merchant payments; fail closed.
    "bfxpay": (_R, _X),
}


def parse_bitfinex(response: Any) -> KeyPermissions:
    """Bitfinex key permissions: one ``[scope, read, write]`` row per scope. A right is
    False only when every scope that could grant it is listed with write 0."""
    reading = _Reading(response)
    if not isinstance(response, list):
        reading.problem(f"answer is not a list ({type(response).__name__})")
        return reading.result()
    writes: dict[str, bool] = {}
    reads: list[bool] = []
    granted: set[str] = set()
    for row in response:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
            reading.unknown_value("row", row)
            continue
        scope, read_bit, write_bit = row[0], _bit(row[1]), _bit(row[2])
        effects = _BITFINEX_SCOPES.get(scope.lower())
        if effects is None:
            reading.unknown.append(_short(scope))
            continue
        if read_bit is None or write_bit is None:
            reading.unknown_value(scope, row[1:])
            continue
        reads.append(read_bit)
        writes[scope.lower()] = write_bit
        if read_bit:
            granted |= effects[0]
        if write_bit:
            if effects[1] is None:
                reading.unknown.append(f"{scope}:write")
            else:
                granted |= effects[1]
    reading.read = any(reads) if reads else None
    if TRADE in granted:
        reading.trade = True
    elif "orders" in writes and "positions" in writes:
        reading.trade = False
    reading.withdraw = _granted(granted, WITHDRAW, writes, ("withdraw", "ui_withdraw"))
    reading.transfer = _granted(granted, TRANSFER, writes, ("wallets", "bfxpay"))
    return reading.result()


def _granted(
    granted: set[str], effect: str, writes: Mapping[str, bool], scopes: Sequence[str]
) -> bool | None:
    """True if granted; False only if every scope that could grant it was listed."""
    if effect in granted:
        return True
    return False if all(scope in writes for scope in scopes) else None


def _bit(value: Any) -> bool | None:
    """Bitfinex flags are 0/1 (a JSON boolean is accepted too)."""
    if value is True or value is False:
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    return None


# ----- probes -----------------------------------------------------------------------

ParamsBuilder = Callable[[str, Sequence[Any]], Mapping[str, Any]]


def _no_params(api_key: str, answers: Sequence[Any]) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Call:
    """One ccxt implicit-method call: the camelCase name we call, its snake_case twin
    (tests check both exist), and its params built from the key and earlier answers."""

    method: str
    snake: str
    params: ParamsBuilder = _no_params


@dataclass(frozen=True)
class Probe:
    """How to ask one exchange: the calls in order, and the parser of the last answer."""

    calls: tuple[Call, ...]
    parse: Callable[[Any], KeyPermissions]
    doc: str


_BINANCE = Probe(
    (Call("sapiGetAccountApiRestrictions", "sapi_get_account_apirestrictions"),),
    parse_binance,
    "https://developers.binance.com/docs/wallet/account/api-key-permission",
)
_OKX = Probe(
    (Call("privateGetAccountConfig", "private_get_account_config"),),
    parse_okx,
    "https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration",
)

PROBES: dict[str, Probe] = {
    "binance": _BINANCE,
    # Same Binance key, same sapi endpoint.
    "binanceusdm": _BINANCE,
    "binancecoinm": _BINANCE,
    "okx": _OKX,
    # OKX's EEA and US hosts, same v5 API (ccxt subclasses of okx).
    "myokx": _OKX,
    "okxus": _OKX,
    "bybit": Probe(
        (Call("privateGetV5UserQueryApi", "private_get_v5_user_query_api"),),
        parse_bybit,
        "https://bybit-exchange.github.io/docs/v5/user/apikey-info",
    ),
    "coinbase": Probe(
        (Call("v3PrivateGetBrokerageKeyPermissions", "v3_private_get_brokerage_key_permissions"),),
        parse_coinbase,
        "https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/data-api/get-api-key-permissions",
    ),
    "kraken": Probe(
        (Call("privatePostGetApiKeyInfo", "private_post_getapikeyinfo"),),
        parse_kraken,
        "https://docs.kraken.com/api-reference/account-data/get-api-key-info",
    ),
    "kucoin": Probe(
        (Call("privateGetUserApiKey", "private_get_user_api_key"),),
        parse_kucoin,
        "https://www.kucoin.com/docs-new/rest/account-info/account-funding/get-apikey-info",
    ),
    "bitget": Probe(
        (Call("privateSpotGetV2SpotAccountInfo", "private_spot_get_v2_spot_account_info"),),
        parse_bitget,
        "https://www.bitget.com/api-doc/spot/account/Get-Account-Info",
    ),
    "htx": Probe(
        (
            Call("v2PrivateGetUserUid", "v2private_get_user_uid"),
            Call("v2PrivateGetUserApiKey", "v2private_get_user_api_key", _htx_key_params),
        ),
        parse_htx,
        "https://www.htx.com/en-us/opend/newApiPages/?id=7ec52c92-7773-11ed-9966-0242ac110003",
    ),
    "bitfinex": Probe(
        (Call("privatePostAuthRPermissions", "private_post_auth_r_permissions"),),
        parse_bitfinex,
        "https://docs.bitfinex.com/reference/key-permissions",
    ),
}


async def probe_permissions(exchange: Any, exchange_id: str, api_key: str) -> KeyPermissions:
    """Ask ``exchange`` (a constructed ccxt async client) what ``api_key`` may do.

    Never raises for an exchange-side failure: a missing probe, a failed call or an
    unreadable answer is an unprovable key, with a one-line problem free of credentials.
    """
    probe = PROBES.get(exchange_id)
    if probe is None:
        return KeyPermissions.unprovable(
            f"no permission probe for {exchange_id}; arbot cannot prove its keys are trade-only"
        )
    answers: list[Any] = []
    for call in probe.calls:
        try:
            params = dict(call.params(api_key, answers))
        except Exception as exc:  # an earlier answer lacks what this call needs
            why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            return KeyPermissions.unprovable(
                f"{exchange_id}: cannot call {call.method}: {why}",
                raw=_record(answers[-1]) if answers else None,
            )
        try:
            answers.append(await getattr(exchange, call.method)(params))
        except Exception as exc:
            return KeyPermissions.unprovable(_failure(exchange, exchange_id, call, exc, api_key))
    try:
        return probe.parse(answers[-1])
    except Exception as exc:  # a parser bug must not open the gate
        return KeyPermissions.unprovable(
            f"{exchange_id}: could not read the answer ({type(exc).__name__})"
        )


# A URL's query string (signatures, timestamps, HTX's AccessKeyId).
_URL_QUERY = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s?#]*)[?#][^\s\"']*")
# key=value / "key": "value" pairs whose name says credential.
_CREDENTIAL_PAIR = re.compile(
    r"((?:api[-_]?key|access[-_]?key(?:id)?|secret|pass(?:word|phrase)?|sign(?:ature)?"
    r"|token|key)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+",
    re.IGNORECASE,
)
# Anything long enough to be a key, a secret or a signature.
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_+=-]{24,}")
_MAX_PROBLEM = 300


def _failure(exchange: Any, exchange_id: str, call: Call, exc: Exception, api_key: str) -> str:
    """One line naming the exchange, the call and the exception, with no credentials."""
    try:
        message = str(exc)
    except Exception:
        message = ""
    lines = message.strip().splitlines()
    detail = lines[0] if lines else ""
    for name in ("apiKey", "secret", "password", "uid", "privateKey"):
        value = getattr(exchange, name, None)
        if isinstance(value, str) and len(value) >= 4:
            detail = detail.replace(value, MASK)
    if len(api_key) >= 4:
        detail = detail.replace(api_key, MASK)
    detail = redact(detail)
    detail = _URL_QUERY.sub(r"\1?" + MASK, detail)
    detail = _CREDENTIAL_PAIR.sub(r"\1" + MASK, detail)
    detail = _LONG_TOKEN.sub(MASK, detail)
    text = f"{exchange_id}: {call.method} failed: {type(exc).__name__}"
    if detail:
        text += f": {detail}"
    return text if len(text) <= _MAX_PROBLEM else text[: _MAX_PROBLEM - 1] + "…"
