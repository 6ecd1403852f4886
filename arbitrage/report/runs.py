"""Recorded runs (`gpuarb status`, `gpuarb history`) as a terminal table, CSV and Markdown. Formatting only.

The rows are the run summaries of ``app.run_summary`` (plain dicts): run_id, name, state, placement, spent_usd,
expected_total_usd, tags... The table and Markdown show money as `report spend` does ($1,234.56); CSV keeps the
numbers (USD, two decimals) and JSON is the summaries themselves.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from arbitrage.money import exact_sum
from arbitrage.plural import plural
from arbitrage.report.spend import money

if TYPE_CHECKING:
    from arbitrage.texttable import TextTable

# (summary key, header) of the human columns, in order; history adds the tags.
COLUMNS: tuple[tuple[str, str], ...] = (("run_id", "Run"), ("name", "Name"), ("state", "State"),
                                         ("placement", "Placement"), ("spent_usd", "Spent"),
                                         ("expected_total_usd", "Expected"))
TAGS_COLUMN = ("tags", "Tags")
_MONEY = frozenset({"spent_usd", "expected_total_usd"})
# CSV: every scalar of a summary, money in USD.
CSV_FIELDS: tuple[str, ...] = ("run_id", "name", "state", "backend", "placement", "created_at", "ended_at",
                               "attempts", "spent_usd", "expected_total_usd", "budget_total_usd", "currency", "tags",
                               "message")


def tags_text(tags: Mapping[str, str], sep: str = ",") -> str:
    """A run's tags as one cell, sorted by key: model=llama3-8b,team=research (``sep`` ', ' lets a table wrap)."""
    return sep.join(f"{k}={v}" for k, v in sorted(tags.items()))


def _columns(with_tags: bool) -> tuple[tuple[str, str], ...]:
    return (*COLUMNS, TAGS_COLUMN) if with_tags else COLUMNS


def _cell(summary: Mapping[str, Any], key: str) -> str:
    value = summary.get(key)
    if key in _MONEY:
        return money(value)
    if key == "tags":
        return tags_text(value or {}, ", ") or "-"
    return "-" if value is None or value == "" else str(value)


def runs_table(summaries: Sequence[Mapping[str, Any]], *, with_tags: bool = False, title: str = "",
               caption: str = "") -> TextTable:
    """The runs as a table: Run, Name, State, Placement, Spent, Expected (and Tags); money as $1,234.56."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=title, caption=caption)
    id_width = max((len(str(s.get("run_id") or "")) for s in summaries), default=0)
    for key, head in _columns(with_tags):
        # A narrow terminal cuts right-justified cells last (texttable._fit), so the run id, which a user copies,
        # is right-justified to stay whole; ids all have one length, and the header padded to it, so both still
        # read left-aligned.
        if key == "run_id":
            table.add_column(head.ljust(id_width), justify="right")
        else:
            table.add_column(head, justify="right" if key in _MONEY else "left")
    for s in summaries:
        table.add_row(*(_cell(s, key) for key, _ in _columns(with_tags)))
    return table


def runs_markdown(summaries: Sequence[Mapping[str, Any]], *, with_tags: bool = False, caption: str = "") -> str:
    """A GitHub-flavoured Markdown table of the runs (money right-aligned), then ``caption``."""
    columns = _columns(with_tags)
    lines = ["| " + " | ".join(head for _, head in columns) + " |",
             "|" + "".join("---:|" if key in _MONEY else "---|" for key, _ in columns)]
    for s in summaries:
        lines.append("| " + " | ".join(_cell(s, key).replace("|", "\\|").replace("\n", " ") for key, _ in columns)
                     + " |")
    return "\n".join([*lines, *(["", caption] if caption else [])]) + "\n"


def runs_csv(summaries: Sequence[Mapping[str, Any]]) -> str:
    """CSV, one line per run: CSV_FIELDS, money in USD (numbers), tags as key=value joined by ','."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for s in summaries:
        writer.writerow([tags_text(s.get("tags") or {}) if f == "tags" else "" if s.get(f) is None else s[f]
                         for f in CSV_FIELDS])
    return buf.getvalue()


def spent_line(summaries: Sequence[Mapping[str, Any]]) -> str:
    """'2 runs, $1,234.56 spent (USD, ...)': the history's closing line."""
    total = exact_sum(float(s.get("spent_usd") or 0.0) for s in summaries)
    return f"{plural(len(summaries), 'run')}, {money(total)} spent (USD, compute at the recorded price + egress)"
