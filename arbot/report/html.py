"""A self-contained HTML page (inline CSS and SVG, no scripts, no network) for a report."""

from __future__ import annotations

from html import escape

from arbot.report.svg import Series, histogram, line_chart
from arbot.report.trades import TradeReport

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 800px; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
"""


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """An HTML document from (heading, HTML fragment) sections."""
    body = "\n".join(
        f"<h2>{escape(h)}</h2>\n{fragment}" if h else fragment for h, fragment in sections
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th>{escape(k)}</th><td class="num">{escape(v)}</td></tr>' for k, v in rows
    )
    return f"<table>{cells}</table>"


def summary_rows(report: TradeReport) -> list[tuple[str, str]]:
    rows = [
        ("opportunities seen", f"{report.opportunities_seen:,}"),
        ("opportunities taken", f"{report.opportunities_taken:,}"),
    ]
    rows += [(f"rejected: {reason}", f"{n:,}") for reason, n in sorted(report.rejected.items())]
    rows += [(f"outcome: {outcome}", f"{n:,}") for outcome, n in sorted(report.outcomes.items())]
    rows += [(f"orders {status}", f"{n:,}") for status, n in sorted(report.orders.items())]
    rows.append(("fills", f"{report.fills:,}"))
    rows += [(f"realised PnL ({q})", f"{v:f}") for q, v in sorted(report.pnl.items())]
    rows += [(f"fees ({c})", f"{v:f}") for c, v in sorted(report.fees.items())]
    rows += [(f"turnover ({q})", f"{v:f}") for q, v in sorted(report.turnover.items())]
    if report.first and report.last:
        rows.append(("from (UTC)", report.first.isoformat()))
        rows.append(("to (UTC)", report.last.isoformat()))
    return rows


def render(report: TradeReport, title: str = "arbot trading report") -> str:
    pnl = [
        Series(f"PnL {quote}", [(t.timestamp(), float(v)) for t, v in points], step=True)
        for quote, points in sorted(report.pnl_points.items())
    ]
    return page(
        title,
        [
            ("", table(summary_rows(report))),
            ("Realised PnL over time", line_chart("Cumulative realised PnL", pnl, y_label="quote")),
            (
                "Edge distribution",
                histogram(
                    "Expected edge of every opportunity seen", report.edges_bps, x_label="bps"
                ),
            ),
        ],
    )
