"""Permission probes: every parser on its exchange's documented answer and on variants,
fail-closed properties (hypothesis), the probe table against the installed ccxt, the
probe runner with fakes, and end to end against the simulator (binance, okx).

The documented answers are copied from the pages cited next to them; where a page has
no example (Bitfinex) the answer is built from its documented schema.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbot.keys.model import KeyPermissions, Verdict
from arbot.keys.permissions import (
    PROBES,
    Call,
    Probe,
    parse_binance,
    parse_bitfinex,
    parse_bitget,
    parse_bybit,
    parse_coinbase,
    parse_htx,
    parse_kraken,
    parse_kucoin,
    parse_okx,
    probe_permissions,
)
from arbot.sim.server import SimServer
from arbot.testing import ccxt_client

Parser = Callable[[Any], KeyPermissions]
UNSAFE, TRADE_ONLY, UNVERIFIED = Verdict.UNSAFE, Verdict.TRADE_ONLY, Verdict.UNVERIFIED


def changed(base: Any, *path_and_value: Any, drop: bool = False) -> Any:
    """A deep copy of ``base`` with the value at ``path`` replaced (or dropped)."""
    *path, last, value = path_and_value if not drop else (*path_and_value, None)
    out = copy.deepcopy(base)
    node = out
    for step in path:
        node = node[step]
    if drop:
        del node[last]
    else:
        node[last] = value
    return out


# ----- documented answers -----------------------------------------------------------

# https://developers.binance.com/docs/wallet/account/api-key-permission (Response Example)
BINANCE_DOC: dict[str, Any] = {
    "ipRestrict": False,
    "createTime": 1698645219000,
    "enableReading": True,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "enableMargin": False,
    "enableFutures": False,
    "permitsUniversalTransfer": False,
    "enableVanillaOptions": False,
    "enableFixApiTrade": False,
    "enableFixReadOnly": True,
    "enableSpotAndMarginTrading": False,
    "enablePortfolioMarginTrading": True,
}
BINANCE_TRADE = changed(
    changed(BINANCE_DOC, "enableSpotAndMarginTrading", True), "enablePortfolioMarginTrading", False
)

# https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration
# (Response Example, as mirrored in openxapi/openxapi specs/okx/.../get_api_v5_account_config)
OKX_DOC: dict[str, Any] = {
    "code": "0",
    "data": [
        {
            "acctLv": "2",
            "acctStpMode": "cancel_maker",
            "autoLoan": False,
            "ctIsoMode": "automatic",
            "enableSpotBorrow": False,
            "greeksType": "PA",
            "ip": "",
            "type": "0",
            "kycLv": "3",
            "label": "v5 test",
            "level": "Lv1",
            "levelTmp": "",
            "liquidationGear": "-1",
            "mainUid": "44705892343619584",
            "mgnIsoMode": "automatic",
            "opAuth": "1",
            "perm": "read_only,withdraw,trade",
            "posMode": "long_short_mode",
            "roleType": "0",
            "spotBorrowAutoRepay": False,
            "spotOffsetType": "",
            "spotRoleType": "0",
            "spotTraderInsts": [],
            "traderInsts": [],
            "uid": "44705892343619584",
        }
    ],
    "msg": "",
}
OKX_TRADE = changed(OKX_DOC, "data", 0, "perm", "read_only,trade")

# https://bybit-exchange.github.io/docs/v5/user/apikey-info (Response Example)
BYBIT_DOC: dict[str, Any] = {
    "retCode": 0,
    "retMsg": "",
    "result": {
        "id": "13770661",
        "note": "readwrite api key",
        "apiKey": "XXXXXX",
        "readOnly": 0,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"],
            "Spot": ["SpotTrade"],
            "Wallet": ["AccountTransfer", "SubMemberTransfer"],
            "Options": ["OptionsTrade"],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
            "Earn": [],
        },
        "ips": ["*"],
        "type": 1,
        "deadlineDay": 66,
        "expiredAt": "2023-12-22T07:20:25Z",
        "createdAt": "2022-10-16T02:24:40Z",
        "unified": 0,
        "uta": 0,
        "userID": 24617703,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    },
    "retExtInfo": {},
    "time": 1697525990798,
}
BYBIT_TRADE = changed(BYBIT_DOC, "result", "permissions", "Wallet", [])

# https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/data-api/get-api-key-permissions
COINBASE_DOC: dict[str, Any] = {
    "can_view": True,
    "can_trade": True,
    "can_transfer": True,
    "portfolio_uuid": "<string>",
    "portfolio_type": "UNDEFINED",
}
COINBASE_TRADE = changed(COINBASE_DOC, "can_transfer", False)

# https://docs.kraken.com/api-reference/account-data/get-api-key-info (example response)
KRAKEN_DOC: dict[str, Any] = {
    "error": [],
    "result": {
        "apiKeyName": "my-api-key",
        "apiKey": "4/SDrDBcOOPnm3nPlNfEMMJDeRcIVqPz+QhRxIodyZbI9po/aVRiHsgX",
        "nonce": "1772627060997",
        "nonceWindow": 0,
        "permissions": ["query-funds", "withdraw-funds", "query-open-trades", "modify-trades"],
        "iban": "AA88 N84G WOAK NMOI",
        "validUntil": "0",
        "queryFrom": "0",
        "queryTo": "0",
        "createdTime": "1772542900",
        "modifiedTime": "1772543095",
        "ipAllowlist": [],
        "lastUsed": "1772627061",
    },
}
KRAKEN_TRADE = changed(
    KRAKEN_DOC, "result", "permissions", ["query-funds", "query-open-trades", "modify-trades"]
)

# https://www.kucoin.com/docs-new/rest/account-info/account-funding/get-apikey-info
# (example as carried by Kucoin/kucoin-universal-sdk, api_account_test.py)
KUCOIN_DOC: dict[str, Any] = {
    "code": "200000",
    "data": {
        "remark": "account1",
        "apiKey": "6705f5c311545b000157d3eb",
        "apiVersion": 3,
        "permission": "General,Futures,Spot,Earn,InnerTransfer,Transfer,Margin",
        "ipWhitelist": "203.**.154,103.**.34",
        "createdAt": 1728443843000,
        "uid": 165111215,
        "isMaster": True,
    },
}
KUCOIN_TRADE = changed(KUCOIN_DOC, "data", "permission", "General,Spot")

# https://www.bitget.com/api-doc/spot/account/Get-Account-Info (Response Example)
BITGET_DOC: dict[str, Any] = {
    "code": "00000",
    "msg": "success",
    "requestTime": 1695808949356,
    "data": {
        "userId": "**********",
        "inviterId": "**********",
        "ips": "127.0.0.1",
        "authorities": ["trade", "readonly"],
        "parentId": 1,
        "traderType": "trader",
        "channelCode": "XXX",
        "channel": "YYY",
        "regisTime": "1246566789345",
    },
}
BITGET_TRADE = changed(BITGET_DOC, "data", "authorities", ["stor", "stow", "coor"])

# https://www.htx.com/en-us/opend/newApiPages/?id=7ec52d6c-7773-11ed-9966-0242ac110003
HTX_UID_DOC: dict[str, Any] = {"code": 200, "data": 63628520}
# https://www.htx.com/en-us/opend/newApiPages/?id=7ec52c92-7773-11ed-9966-0242ac110003
# (the success example lists two keys, as when no accessKey is given)
HTX_DOC: dict[str, Any] = {
    "code": 200,
    "message": "success",
    "data": [
        {
            "accessKey": "160bb889-b7XXXXbe-e0XXXXf5-ghxertfvbf",
            "status": "normal",
            "note": "host",
            "permission": "trade,readOnly",
            "ipAddresses": "192.168.0.1,192.168.1.1",
            "validDays": -1,
            "createTime": 1615192704000,
            "updateTime": 1623030338000,
        },
        {
            "accessKey": "5000d371-edXXXXf5tf-40XXXX8b-ab8e5",
            "status": "normal",
            "note": "host two",
            "permission": "readOnly,trade,withdraw",
            "ipAddresses": "",
            "validDays": 7,
            "createTime": 1623158078000,
            "updateTime": 1629875976000,
        },
    ],
    "ok": True,
}
HTX_TRADE = changed(HTX_DOC, "data", HTX_DOC["data"][:1])
HTX_WITHDRAW = changed(HTX_DOC, "data", HTX_DOC["data"][1:])

# https://docs.bitfinex.com/reference/key-permissions: the page documents the schema
# only ([SCOPE, READ 0/1, WRITE 0/1] per scope, scopes listed there); no example.
BITFINEX_DOC: list[list[Any]] = [
    ["account", 1, 0],
    ["history", 1, 0],
    ["orders", 1, 1],
    ["positions", 1, 1],
    ["funding", 1, 1],
    ["settings", 1, 1],
    ["wallets", 1, 1],
    ["withdraw", 0, 0],
    ["ui_withdraw", 0, 0],
    ["bfxpay", 0, 0],
]
BITFINEX_TRADE = changed(BITFINEX_DOC, 6, ["wallets", 1, 0])


# ----- documented answers and hand-made variants ------------------------------------


@pytest.mark.parametrize(
    ("parse", "response", "verdict", "fields"),
    [
        # Portfolio-margin trading is a trading right; nothing moves funds out.
        (parse_binance, BINANCE_DOC, TRADE_ONLY, {"read": True, "ip_restricted": False}),
        (parse_okx, OKX_DOC, UNSAFE, {"withdraw": True, "trade": True, "ip_restricted": False}),
        (parse_bybit, BYBIT_DOC, UNSAFE, {"transfer": True, "withdraw": False}),
        (parse_coinbase, COINBASE_DOC, UNSAFE, {"withdraw": True, "ip_restricted": None}),
        (parse_kraken, KRAKEN_DOC, UNSAFE, {"withdraw": True, "ip_restricted": False}),
        (parse_kucoin, KUCOIN_DOC, UNSAFE, {"withdraw": True, "ip_restricted": True}),
        (parse_bitget, BITGET_DOC, TRADE_ONLY, {"read": True, "ip_restricted": True}),
        (parse_htx, HTX_DOC, UNSAFE, {"withdraw": True}),
        (parse_bitfinex, BITFINEX_DOC, UNSAFE, {"transfer": True, "withdraw": False}),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_documented_answer(
    parse: Parser, response: Any, verdict: Verdict, fields: dict[str, Any]
) -> None:
    perms = parse(copy.deepcopy(response))
    assert perms.verdict is verdict, perms.reason
    for name, value in fields.items():
        assert getattr(perms, name) is value, name
    if verdict is not UNVERIFIED:
        assert perms.unknown == ()


def test_htx_listing_several_keys_is_a_problem_even_without_withdraw() -> None:
    both_trade = changed(HTX_DOC, "data", 1, "permission", "readOnly,trade")
    perms = parse_htx(both_trade)
    assert perms.verdict is UNVERIFIED
    assert perms.problem
    assert "2 keys" in perms.problem
    assert parse_htx(HTX_DOC).problem  # unsafe, and still says why it could not choose


WITHDRAW_VARIANTS = [
    (parse_binance, changed(BINANCE_TRADE, "enableWithdrawals", True), "withdraw"),
    (parse_binance, changed(BINANCE_TRADE, "enableInternalTransfer", True), "transfer"),
    (parse_binance, changed(BINANCE_TRADE, "permitsUniversalTransfer", True), "transfer"),
    (parse_okx, OKX_DOC, "withdraw"),
    (
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "Wallet", ["Withdraw"]),
        "withdraw",
    ),
    (
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "FiatP2P", ["FiatP2POrder"]),
        "transfer",
    ),
    (parse_coinbase, COINBASE_DOC, "withdraw"),
    (parse_kraken, KRAKEN_DOC, "withdraw"),
    (
        parse_kucoin,
        changed(KUCOIN_TRADE, "data", "permission", "General,Spot,Transfer"),
        "withdraw",
    ),
    (
        parse_kucoin,
        changed(KUCOIN_TRADE, "data", "permission", "General,Spot,InnerTransfer"),
        "transfer",
    ),
    (parse_bitget, changed(BITGET_TRADE, "data", "authorities", ["stow", "wwow"]), "withdraw"),
    (parse_bitget, changed(BITGET_TRADE, "data", "authorities", ["stow", "wtow"]), "transfer"),
    (parse_htx, HTX_WITHDRAW, "withdraw"),
    (parse_bitfinex, changed(BITFINEX_TRADE, 7, ["withdraw", 1, 1]), "withdraw"),
    (parse_bitfinex, changed(BITFINEX_TRADE, 9, ["bfxpay", 1, 1]), "transfer"),
]


@pytest.mark.parametrize(("parse", "response", "right"), WITHDRAW_VARIANTS)
def test_a_key_that_can_move_funds_out_is_unsafe(parse: Parser, response: Any, right: str) -> None:
    perms = parse(response)
    assert perms.verdict is UNSAFE
    assert getattr(perms, right) is True


TRADE_ONLY_VARIANTS = [
    (parse_binance, BINANCE_TRADE),
    (parse_okx, OKX_TRADE),
    (parse_bybit, BYBIT_TRADE),
    (parse_coinbase, COINBASE_TRADE),
    (parse_kraken, KRAKEN_TRADE),
    (parse_kucoin, KUCOIN_TRADE),
    (parse_bitget, BITGET_TRADE),
    (parse_htx, HTX_TRADE),
    (parse_bitfinex, BITFINEX_TRADE),
]


@pytest.mark.parametrize(("parse", "response"), TRADE_ONLY_VARIANTS)
def test_a_trade_only_key_is_trade_only(parse: Parser, response: Any) -> None:
    perms = parse(copy.deepcopy(response))
    assert perms.verdict is TRADE_ONLY, perms.reason
    assert (perms.trade, perms.withdraw, perms.transfer) == (True, False, False)
    assert perms.unknown == ()
    assert perms.problem is None


UNKNOWN_VARIANTS = [
    (
        parse_binance,
        changed(BINANCE_TRADE, "enableSomethingNew", False),
        "field enableSomethingNew",
    ),
    (parse_okx, changed(OKX_TRADE, "data", 0, "perm", "read_only,trade,transfer"), "transfer"),
    (parse_okx, changed(OKX_TRADE, "data", 0, "subAcctPerm", "x"), "field subAcctPerm"),
    (
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "Spot", ["SpotTrade", "SpotLoan"]),
        "Spot:SpotLoan",
    ),
    (
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "Lending", []),
        "field permissions.Lending",
    ),
    (parse_coinbase, changed(COINBASE_TRADE, "can_receive", True), "field can_receive"),
    (
        parse_kraken,
        changed(KRAKEN_TRADE, "result", "permissions", ["modify-trades", "manage-keys"]),
        "manage-keys",
    ),
    (parse_kucoin, changed(KUCOIN_TRADE, "data", "permission", "General,Spot,Convert"), "Convert"),
    (parse_bitget, changed(BITGET_TRADE, "data", "authorities", ["stow", "cvtw"]), "cvtw"),
    (parse_htx, changed(HTX_TRADE, "data", 0, "permission", "trade,readOnly,transfer"), "transfer"),
    (parse_bitfinex, [*BITFINEX_TRADE, ["eaas", 1, 0]], "eaas"),
    (parse_bitfinex, changed(BITFINEX_TRADE, 0, ["account", 1, 1]), "account:write"),
]


@pytest.mark.parametrize(("parse", "response", "unknown"), UNKNOWN_VARIANTS)
def test_an_unknown_token_or_field_is_unverified(
    parse: Parser, response: Any, unknown: str
) -> None:
    perms = parse(response)
    assert perms.verdict is UNVERIFIED
    assert unknown in perms.unknown
    assert "unrecognised" in perms.reason


def _wrong_shapes(trade_only: Any) -> list[Any]:
    wrong_container = {"data": trade_only} if isinstance(trade_only, list) else [trade_only]
    return [None, 0, "", "text", [], {}, wrong_container]


MALFORMED: list[tuple[str, Parser, Any]] = [
    (
        "binance no withdraw flag",
        parse_binance,
        changed(BINANCE_TRADE, "enableWithdrawals", drop=True),
    ),
    (
        "binance flag not a bool",
        parse_binance,
        changed(BINANCE_TRADE, "enableWithdrawals", "false"),
    ),
    (
        "binance no transfer flag",
        parse_binance,
        changed(BINANCE_TRADE, "permitsUniversalTransfer", drop=True),
    ),
    ("okx no perm", parse_okx, changed(OKX_TRADE, "data", 0, "perm", drop=True)),
    ("okx perm a list", parse_okx, changed(OKX_TRADE, "data", 0, "perm", ["trade"])),
    ("okx error code", parse_okx, changed(OKX_TRADE, "code", "50111")),
    ("okx two configs", parse_okx, changed(OKX_TRADE, "data", OKX_TRADE["data"] * 2)),
    ("okx data a dict", parse_okx, changed(OKX_TRADE, "data", OKX_TRADE["data"][0])),
    (
        "bybit no wallet",
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "Wallet", drop=True),
    ),
    (
        "bybit wallet a string",
        parse_bybit,
        changed(BYBIT_TRADE, "result", "permissions", "Wallet", ""),
    ),
    ("bybit readOnly missing", parse_bybit, changed(BYBIT_TRADE, "result", "readOnly", drop=True)),
    ("bybit readOnly true", parse_bybit, changed(BYBIT_TRADE, "result", "readOnly", True)),
    ("bybit read-only key", parse_bybit, changed(BYBIT_TRADE, "result", "readOnly", 1)),
    ("bybit retCode", parse_bybit, changed(BYBIT_TRADE, "retCode", 10003)),
    (
        "coinbase no can_transfer",
        parse_coinbase,
        changed(COINBASE_TRADE, "can_transfer", drop=True),
    ),
    ("coinbase can_transfer null", parse_coinbase, changed(COINBASE_TRADE, "can_transfer", None)),
    (
        "kraken no permissions",
        parse_kraken,
        changed(KRAKEN_TRADE, "result", "permissions", drop=True),
    ),
    ("kraken error", parse_kraken, changed(KRAKEN_TRADE, "error", ["EAPI:Invalid key"])),
    ("kraken no result", parse_kraken, changed(KRAKEN_TRADE, "result", drop=True)),
    (
        "kucoin permission a list",
        parse_kucoin,
        changed(KUCOIN_TRADE, "data", "permission", ["Spot"]),
    ),
    ("kucoin code", parse_kucoin, changed(KUCOIN_TRADE, "code", 200000)),
    (
        "bitget authorities a string",
        parse_bitget,
        changed(BITGET_TRADE, "data", "authorities", "stow"),
    ),
    ("bitget data null", parse_bitget, changed(BITGET_TRADE, "data", None)),
    ("htx data a dict", parse_htx, changed(HTX_TRADE, "data", HTX_TRADE["data"][0])),
    ("htx no keys", parse_htx, changed(HTX_TRADE, "data", [])),
    ("htx expired", parse_htx, changed(HTX_TRADE, "data", 0, "status", "expired")),
    ("htx code as string", parse_htx, changed(HTX_TRADE, "code", "200")),
    ("bitfinex no bfxpay row", parse_bitfinex, BITFINEX_TRADE[:-1]),
    ("bitfinex string bit", parse_bitfinex, changed(BITFINEX_TRADE, 7, ["withdraw", 0, "0"])),
    ("bitfinex short row", parse_bitfinex, changed(BITFINEX_TRADE, 7, ["withdraw", 0])),
    ("bitfinex rows not lists", parse_bitfinex, [None, "orders", 1]),
]
for _parse, _trade in TRADE_ONLY_VARIANTS:
    for _i, _shape in enumerate(_wrong_shapes(_trade)):
        MALFORMED.append((f"{_parse.__name__} shape {_i}", _parse, _shape))


@pytest.mark.parametrize(("parse", "response"), [pytest.param(p, r, id=n) for n, p, r in MALFORMED])
def test_malformed_answers_are_unverified_never_an_error(parse: Parser, response: Any) -> None:
    perms = parse(response)
    assert perms.verdict is UNVERIFIED, perms
    assert perms.withdraw is not True
    assert perms.transfer is not True


def test_raw_keeps_the_answer_but_masks_key_ids() -> None:
    perms = parse_kraken(copy.deepcopy(KRAKEN_DOC))
    assert perms.raw["result"]["apiKey"] == "***HsgX"
    assert perms.raw["result"]["permissions"] == KRAKEN_DOC["result"]["permissions"]
    assert parse_bitfinex(BITFINEX_DOC).raw == {"response": BITFINEX_DOC}
    assert parse_kucoin(KUCOIN_DOC).raw["data"]["apiKey"] == "***d3eb"


# ----- properties: mixing known and random tokens -----------------------------------

NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=16)


@dataclass(frozen=True)
class Tokens:
    """One exchange's token universe, and how to build a well-formed answer from tokens."""

    parse: Parser
    build: Callable[[list[str]], Any]
    safe: tuple[str, ...]  # known; cannot move funds out
    dangerous: tuple[str, ...]  # known; withdraw or transfer out
    trades: tuple[str, ...]  # the safe tokens that grant trading
    unknown: st.SearchStrategy[str]  # tokens the parser cannot know


def _not_in(known: tuple[str, ...], *, fold: bool = True) -> st.SearchStrategy[str]:
    seen = {k.lower() for k in known} if fold else set(known)
    return NAMES.filter(lambda t: (t.lower() if fold else t) not in seen)


def _flags_answer(base: dict[str, Any], flags: tuple[str, ...]) -> Callable[[list[str]], Any]:
    def build(tokens: list[str]) -> Any:
        out = {**base, **dict.fromkeys(flags, False)}
        out.update(dict.fromkeys(tokens, True))
        return out

    return build


BINANCE_SAFE = (
    "enableReading", "enableFixReadOnly", "enableSpotAndMarginTrading", "enableMargin",
    "enableFutures", "enableVanillaOptions", "enableFixApiTrade", "enablePortfolioMarginTrading",
)  # fmt: skip
BINANCE_DANGER = ("enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer")
BINANCE_OTHER = ("ipRestrict", "createTime", "tradingAuthorityExpirationTime")
KRAKEN_SAFE = (
    "query-funds", "query-open-trades", "query-closed-trades", "query-ledger", "export-data",
    "modify-trades", "close-trades", "create-ws-token", "add-funds", "earn-funds",
)  # fmt: skip
KRAKEN_DANGER = ("withdraw-funds", "add-withdraw-address", "update-withdraw-address")
KUCOIN_SAFE = ("General", "Spot", "Margin", "Futures", "Earn")
KUCOIN_DANGER = ("InnerTransfer", "Transfer", "Withdrawal", "FlexTransfers")
BITGET_SAFE = (
    "coor", "cpor", "stor", "smor", "ttor", "wtor", "taxr", "chor", "p2pr", "pllr",
    "readonly", "coow", "cpow", "stow", "smow", "ttow", "trade", "taxw", "pllw",
)  # fmt: skip
BITGET_DANGER = ("wwow", "withdraw", "wtow", "transfer", "chow", "p2p")
BYBIT_SAFE = (
    "ContractTrade:Order", "ContractTrade:Position", "Spot:SpotTrade", "Options:OptionsTrade",
    "Derivatives:DerivativesTrade", "Exchange:ExchangeHistory", "Earn:Earn",
    "Affiliate:Affiliate",
)  # fmt: skip
BYBIT_DANGER = (
    "Wallet:AccountTransfer", "Wallet:SubMemberTransfer", "Wallet:SubMemberTransferList",
    "Wallet:Withdraw", "FiatP2P:FiatP2POrder", "FiatP2P:Advertising",
    "FiatBybitPay:FaitPayOrder", "FiatBybitPay:FiatPayOrder",
    "FiatConvertBroker:FiatConvertBrokerOrder",
)  # fmt: skip
BYBIT_CATEGORIES = (
    "ContractTrade", "Spot", "Wallet", "Options", "Derivatives", "Exchange", "Earn",
    "Affiliate", "FiatP2P", "FiatBybitPay", "FiatConvertBroker", "NFT", "BlockTrade",
    "CopyTrading",
)  # fmt: skip
BITFINEX_SCOPES = (
    "account", "history", "orders", "positions", "funding", "settings", "wallets",
    "withdraw", "ui_withdraw", "bfxpay",
)  # fmt: skip


def _bybit_build(tokens: list[str]) -> Any:
    out = copy.deepcopy(BYBIT_TRADE)
    perms: dict[str, list[str]] = {c: [] for c in BYBIT_CATEGORIES[:11]}
    out["result"]["permissions"] = perms
    for token in tokens:
        category, _, name = token.partition(":")
        perms.setdefault(category, []).append(name)
    return out


def _bitfinex_build(tokens: list[str]) -> Any:
    rows = {scope: [scope, 0, 0] for scope in BITFINEX_SCOPES}
    for token in tokens:
        scope, _, access = token.partition(":")
        row = rows.setdefault(scope, [scope, 0, 0])
        row[1 if access == "r" else 2] = 1
    return list(rows.values())


_bybit_known = {t.lower() for t in BYBIT_SAFE + BYBIT_DANGER}
SPECS = {
    "binance": Tokens(
        parse_binance,
        _flags_answer({"ipRestrict": False, "createTime": 1}, BINANCE_SAFE + BINANCE_DANGER),
        BINANCE_SAFE,
        BINANCE_DANGER,
        BINANCE_SAFE[2:],
        _not_in(BINANCE_SAFE + BINANCE_DANGER + BINANCE_OTHER, fold=False),
    ),
    "okx": Tokens(
        parse_okx,
        lambda tokens: changed(OKX_TRADE, "data", 0, "perm", ",".join(tokens)),
        ("read_only", "trade"),
        ("withdraw",),
        ("trade",),
        _not_in(("read_only", "trade", "withdraw")),
    ),
    "bybit": Tokens(
        parse_bybit,
        _bybit_build,
        BYBIT_SAFE,
        BYBIT_DANGER,
        BYBIT_SAFE[:5],
        st.one_of(
            st.tuples(st.sampled_from(BYBIT_CATEGORIES), NAMES).map(":".join),
            st.tuples(_not_in(BYBIT_CATEGORIES), NAMES).map(":".join),
        ).filter(lambda t: t.lower() not in _bybit_known),
    ),
    "coinbase": Tokens(
        parse_coinbase,
        _flags_answer(
            {"portfolio_uuid": "p", "portfolio_type": "DEFAULT"},
            ("can_view", "can_trade", "can_transfer"),
        ),
        ("can_view", "can_trade"),
        ("can_transfer",),
        ("can_trade",),
        _not_in(
            ("can_view", "can_trade", "can_transfer", "portfolio_uuid", "portfolio_type"),
            fold=False,
        ),
    ),
    "kraken": Tokens(
        parse_kraken,
        lambda tokens: changed(KRAKEN_TRADE, "result", "permissions", tokens),
        KRAKEN_SAFE,
        KRAKEN_DANGER,
        ("modify-trades",),
        _not_in(KRAKEN_SAFE + KRAKEN_DANGER),
    ),
    "kucoin": Tokens(
        parse_kucoin,
        lambda tokens: changed(KUCOIN_TRADE, "data", "permission", ",".join(tokens)),
        KUCOIN_SAFE,
        KUCOIN_DANGER,
        ("Spot", "Margin", "Futures"),
        _not_in(KUCOIN_SAFE + KUCOIN_DANGER),
    ),
    "bitget": Tokens(
        parse_bitget,
        lambda tokens: changed(BITGET_TRADE, "data", "authorities", tokens),
        BITGET_SAFE,
        BITGET_DANGER,
        ("coow", "cpow", "stow", "smow", "ttow", "trade"),
        _not_in(BITGET_SAFE + BITGET_DANGER),
    ),
    "htx": Tokens(
        parse_htx,
        lambda tokens: changed(HTX_TRADE, "data", 0, "permission", ",".join(tokens)),
        ("readOnly", "trade"),
        ("withdraw",),
        ("trade",),
        _not_in(("readOnly", "trade", "withdraw")),
    ),
    "bitfinex": Tokens(
        parse_bitfinex,
        _bitfinex_build,
        (
            *(f"{s}:r" for s in BITFINEX_SCOPES),
            "orders:w",
            "positions:w",
            "funding:w",
            "settings:w",
        ),
        ("wallets:w", "withdraw:w", "ui_withdraw:w", "bfxpay:w"),
        ("orders:w", "positions:w"),
        st.one_of(
            st.sampled_from(("account:w", "history:w")),
            st.tuples(_not_in(BITFINEX_SCOPES), st.sampled_from(("r", "w"))).map(":".join),
        ),
    ),
}


def test_every_required_exchange_has_a_probe_and_a_token_spec() -> None:
    required = {
        "binance",
        "okx",
        "bybit",
        "coinbase",
        "kraken",
        "kucoin",
        "bitget",
        "htx",
        "bitfinex",
    }
    assert required <= set(PROBES)
    assert required == set(SPECS)
    for exchange_id, spec in SPECS.items():
        assert PROBES[exchange_id].parse is spec.parse


def _mixes(spec: Tokens) -> st.SearchStrategy[tuple[list[str], list[str], list[str]]]:
    return st.tuples(
        st.lists(st.sampled_from(spec.safe), max_size=6),
        st.lists(st.sampled_from(spec.dangerous), max_size=3),
        st.lists(spec.unknown, max_size=3),
    )


@pytest.mark.parametrize("exchange_id", sorted(SPECS))
@given(data=st.data())
def test_any_mix_of_tokens_is_read_fail_closed(exchange_id: str, data: st.DataObject) -> None:
    spec = SPECS[exchange_id]
    safe, dangerous, unknown = data.draw(_mixes(spec))
    tokens = data.draw(st.permutations([*safe, *dangerous, *unknown]))
    perms = spec.parse(spec.build(tokens))
    assert isinstance(perms, KeyPermissions)
    if dangerous:
        assert perms.verdict is UNSAFE, (tokens, perms)
    if unknown:
        assert perms.verdict is not TRADE_ONLY, (tokens, perms)
    if not dangerous and not unknown:
        expected = TRADE_ONLY if set(safe) & set(spec.trades) else UNVERIFIED
        assert perms.verdict is expected, (tokens, perms)


# Strings of at most three characters: no exchange's answer can be spelt with them, so
# no value drawn here is a genuine answer and none may prove a key trade-only.
SHORT = st.text(max_size=3)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | SHORT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SHORT, inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("exchange_id", sorted(SPECS))
@given(value=JSON)
def test_arbitrary_json_never_raises_and_never_proves_anything(
    exchange_id: str, value: Any
) -> None:
    perms = SPECS[exchange_id].parse(value)
    assert isinstance(perms, KeyPermissions)
    assert perms.verdict is not TRADE_ONLY


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@pytest.mark.parametrize(("parse", "response"), TRADE_ONLY_VARIANTS)
@given(data=st.data())
def test_corrupting_a_trade_only_answer_never_raises(
    parse: Parser, response: Any, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(response)))
    corrupt = changed(response, *path, data.draw(JSON))
    perms = parse(corrupt)
    assert isinstance(perms, KeyPermissions)
    assert perms.verdict in set(Verdict)


# ----- the probe table against the installed ccxt -----------------------------------


@pytest.mark.parametrize("exchange_id", sorted(PROBES))
def test_probe_methods_exist_in_both_spellings(exchange_id: str) -> None:
    exchange = getattr(ccxt, exchange_id)()  # no keys: constructing sends nothing
    for call in PROBES[exchange_id].calls:
        camel = getattr(exchange, call.method)
        snake = getattr(exchange, call.snake)
        assert callable(camel)
        assert camel == snake, (call.method, call.snake)
    assert PROBES[exchange_id].doc.startswith("https://")


# ----- the probe runner, with fake exchanges ----------------------------------------

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


class FakeExchange:
    """Answers implicit methods from a script; records every call."""

    def __init__(self, answers: dict[str, Any], **attrs: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for name, value in attrs.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name not in self.__dict__.get("answers", {}):
            raise AttributeError(name)

        async def method(params: dict[str, Any] | None = None) -> Any:
            self.calls.append((name, dict(params or {})))
            answer = self.answers[name]
            if isinstance(answer, BaseException):
                raise answer
            return copy.deepcopy(answer)

        return method


async def test_an_exchange_without_a_probe_is_unprovable() -> None:
    perms = await probe_permissions(FakeExchange({}), "mexc", KEY)
    assert perms.verdict is UNVERIFIED
    assert perms.problem
    assert perms.problem.startswith("no permission probe for mexc; ")


async def test_binance_probe_calls_its_method_and_parses() -> None:
    fake = FakeExchange({"sapiGetAccountApiRestrictions": BINANCE_TRADE})
    perms = await probe_permissions(fake, "binance", KEY)
    assert perms.verdict is TRADE_ONLY
    assert fake.calls == [("sapiGetAccountApiRestrictions", {})]


async def test_htx_asks_for_the_uid_then_for_this_key() -> None:
    fake = FakeExchange({"v2PrivateGetUserUid": HTX_UID_DOC, "v2PrivateGetUserApiKey": HTX_TRADE})
    perms = await probe_permissions(fake, "htx", KEY)
    assert perms.verdict is TRADE_ONLY, perms.reason
    assert fake.calls == [
        ("v2PrivateGetUserUid", {}),
        ("v2PrivateGetUserApiKey", {"uid": 63628520, "accessKey": KEY}),
    ]


@pytest.mark.parametrize(
    "uid_answer",
    [{"code": 200}, {"code": 200, "data": "x"}, {"code": 500, "data": 1}, [], None, {"data": True}],
)
async def test_htx_without_a_uid_stops_before_the_second_call(uid_answer: Any) -> None:
    fake = FakeExchange({"v2PrivateGetUserUid": uid_answer, "v2PrivateGetUserApiKey": HTX_TRADE})
    perms = await probe_permissions(fake, "htx", KEY)
    assert perms.verdict is UNVERIFIED
    assert (
        perms.problem
        == "htx: cannot call v2PrivateGetUserApiKey: v2PrivateGetUserUid returned no uid"
    )
    assert [name for name, _ in fake.calls] == ["v2PrivateGetUserUid"]


class FakeNetworkError(Exception):
    pass


async def test_a_failed_call_is_one_line_without_credentials() -> None:
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    message = (
        f"htx GET https://api.huobi.pro/v2/user/api-key?AccessKeyId={KEY}&Signature=4F65x5A2bLyMWVQj3Aqp"
        f'%2BB4w%3D&uid=1 401 {{"err-msg":"bad key {KEY}", "secret": "{secret}"}}\n'
        f"Traceback line two with {secret}"
    )
    fake = FakeExchange(
        {"v2PrivateGetUserUid": FakeNetworkError(message)}, apiKey=KEY, secret=secret
    )
    perms = await probe_permissions(fake, "htx", KEY)
    assert perms.verdict is UNVERIFIED
    problem = perms.problem or ""
    assert problem.startswith("htx: v2PrivateGetUserUid failed: FakeNetworkError: htx GET https://")
    assert "\n" not in problem
    for leak in (KEY, secret, "4F65x5A2bLyMWVQj3Aqp", "AccessKeyId=", "Traceback"):
        assert leak not in problem


async def test_a_missing_method_is_a_failed_call() -> None:
    perms = await probe_permissions(FakeExchange({}), "okx", KEY)
    assert perms.verdict is UNVERIFIED
    assert perms.problem
    assert perms.problem.startswith("okx: privateGetAccountConfig failed: AttributeError")


async def test_a_parser_that_raises_cannot_open_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(response: Any) -> KeyPermissions:
        raise KeyError("bug")

    monkeypatch.setitem(PROBES, "fake", Probe((Call("fetchIt", "fetch_it"),), broken, "https://x"))
    perms = await probe_permissions(FakeExchange({"fetchIt": {}}), "fake", KEY)
    assert perms.verdict is UNVERIFIED
    assert perms.problem == "fake: could not read the answer (KeyError)"


# ----- end to end against the simulator ---------------------------------------------

VENUES = ["binance", "okx"]


@pytest.mark.parametrize("venue", VENUES)
async def test_simulator_trade_key_is_trade_only(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as exchange:
        perms = await probe_permissions(
            exchange, frozen_sim.venues[venue].protocol, exchange.apiKey
        )
    assert perms.verdict is TRADE_ONLY, perms.reason
    assert (perms.read, perms.trade, perms.withdraw, perms.transfer) == (True, True, False, False)
    assert frozen_sim.venues[venue].withdrawals == []


@pytest.mark.parametrize("venue", VENUES)
async def test_simulator_withdraw_key_is_unsafe(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, withdraw_key=True, websocket=False) as exchange:
        perms = await probe_permissions(
            exchange, frozen_sim.venues[venue].protocol, exchange.apiKey
        )
    assert perms.verdict is UNSAFE
    assert perms.withdraw is True
    assert frozen_sim.venues[venue].withdrawals == []


@pytest.mark.parametrize("venue", VENUES)
async def test_simulator_outage_is_unverified_without_credentials(
    frozen_sim: SimServer, venue: str
) -> None:
    frozen_sim.venues[venue].faults.rest_errors = [500]
    async with ccxt_client(frozen_sim, venue, websocket=False) as exchange:
        perms = await probe_permissions(exchange, venue, exchange.apiKey)
        credentials = [exchange.apiKey, exchange.secret]
    assert perms.verdict is UNVERIFIED
    problem = perms.problem or ""
    assert problem.startswith(f"{venue}: ")
    assert "ExchangeNotAvailable" in problem
    assert "\n" not in problem
    for credential in credentials:
        assert credential not in problem
    assert "signature=" not in problem.lower()
    assert frozen_sim.venues[venue].withdrawals == []


@pytest.mark.parametrize("venue", VENUES)
async def test_simulator_rejects_an_unknown_key(frozen_sim: SimServer, venue: str) -> None:
    bogus = "Zq8Kp3mW7xY2vN5bT9cR4dF6gH1jL0sA"
    async with ccxt_client(frozen_sim, venue, websocket=False, apiKey=bogus) as exchange:
        perms = await probe_permissions(exchange, venue, bogus)
    assert perms.verdict is UNVERIFIED
    assert perms.problem
    assert "AuthenticationError" in perms.problem
    assert bogus not in perms.problem
