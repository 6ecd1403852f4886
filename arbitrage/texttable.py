"""The CLI's tables: plain text, columns two spaces apart under an underlined header (as `sky status` draws them).

rich cost ~70 ms per process on a 2-core machine (its import, then the first render's lazy imports and markup
parsing of every cell), a seventh of the `gpuarb plan` start-up budget, to draw a grid of short strings. This
module draws one in microseconds with the standard library, and without box borders the 100-column plan table has
14 more characters for its content. A `TextTable` prints as text (`str(table)`, `render(width)`) and through a
rich console (`__rich_console__`).

Fitting a width (see `_fit`): text wraps and names are cut before any number is (rich cut every column alike, so
at 100 columns it drew `$852.…`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any, Literal

Justify = Literal["left", "right"]
_MIN_CUT = 3  # a cut cell keeps at least this many characters (two and the ellipsis)
_GAP = 2  # spaces between columns
_TEXT_FLOOR = 10  # names are cut to this before any word is broken or any number cut


class Column:
    """One column: its header, alignment, whether its cells may wrap onto more lines, and its footer cell."""

    __slots__ = ("footer", "header", "justify", "no_wrap")

    def __init__(self, header: str, justify: Justify = "left", no_wrap: bool = False, footer: str = "") -> None:
        self.header, self.justify, self.no_wrap, self.footer = header, justify, no_wrap, footer


class TextTable:
    """Rows of strings under headers, with a title above and a caption below (plain classes: this module is on
    every command's start-up path, where each dataclass costs ~1 ms to create)."""

    def __init__(self, title: str = "", caption: str = "") -> None:
        self.title, self.caption = title, caption
        self.columns: list[Column] = []
        self.rows: list[list[str]] = []

    def add_column(self, header: str, justify: Justify = "left", no_wrap: bool = False, footer: str = "") -> None:
        """Append a column (before any row is added); ``footer`` is its cell in the closing line (a total)."""
        self.columns.append(Column(header, justify, no_wrap, footer))

    def add_row(self, *cells: Any) -> None:
        """Append a row; missing cells are blank, every cell is shown as ``str``."""
        if len(cells) > len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        row = ["" if c is None else str(c) for c in cells]
        self.rows.append(row + [""] * (len(self.columns) - len(row)))

    # -- drawing -----------------------------------------------------------------------------------

    def render(self, width: int | None = None) -> str:
        """The table as lines no wider than ``width`` (default: the terminal's, 200 when not a terminal)."""
        width = width or terminal_width()
        n = len(self.columns)
        if n == 0:
            return "\n".join(p for p in (self.title, self.caption) if p)
        footers = [c.footer for c in self.columns] if any(c.footer for c in self.columns) else None
        grid = [[c.header for c in self.columns], *self.rows, *([footers] if footers else [])]
        widths = [max(_longest_line(r[i]) for r in grid) for i in range(n)]
        widths = _fit(widths, self.columns, grid, width - _GAP * (n - 1))
        rule = (" " * _GAP).join("─" * w for w in widths)
        lines = [self.title] if self.title else []
        lines += self._cells(grid[0], widths)
        lines.append(rule)
        for row in grid[1: len(grid) - (1 if footers else 0)]:
            lines += self._cells(row, widths)
        if footers:
            lines += [rule, *self._cells(footers, widths)]
        if self.caption:
            lines.append(self.caption)
        return "\n".join(line.rstrip() for line in lines)

    def _cells(self, row: list[str], widths: list[int]) -> list[str]:
        parts = [_layout(cell, w, c.no_wrap) for cell, w, c in zip(row, widths, self.columns, strict=True)]
        out = []
        for k in range(max(len(p) for p in parts)):
            cells = []
            for part, w, c in zip(parts, widths, self.columns, strict=True):
                text = part[k] if k < len(part) else ""
                cells.append(text.rjust(w) if c.justify == "right" else text.ljust(w))
            out.append((" " * _GAP).join(cells))
        return out

    def __str__(self) -> str:
        return self.render()

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        """Print through a rich console at its width (rich is imported only on this path)."""
        from rich.text import Text

        yield Text(self.render(options.max_width))


def terminal_width() -> int:
    """The terminal's columns (``COLUMNS`` wins), or 200 when output is not a terminal, as the CLI's rich console."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 200


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _fit(widths: list[int], columns: list[Column], grid: list[list[str]], room: int) -> list[int]:
    """Column widths that fit ``room`` characters of content, giving up the least readable thing first: wrap text
    at spaces (down to its longest word), then cut no-wrap text (names, to ``_TEXT_FLOOR``), then break words, and
    only then cut numbers (right-justified columns), always the widest candidate first."""
    widths = list(widths)
    words = [max(_longest_word(r[i]) for r in grid) for i in range(len(widths))]
    text = [c.justify == "left" for c in columns]
    steps = [
        [(i, words[i]) for i, c in enumerate(columns) if not c.no_wrap],
        [(i, _TEXT_FLOOR) for i, c in enumerate(columns) if c.no_wrap and text[i]],
        [(i, _MIN_CUT) for i, c in enumerate(columns) if text[i]],
        [(i, _MIN_CUT) for i in range(len(columns))],
    ]
    for step in steps:
        floors = dict(step)
        while sum(widths) > room:
            movable = [i for i in floors if widths[i] > floors[i]]
            if not movable:
                break
            widths[max(movable, key=lambda i: widths[i])] -= 1
    return widths


def _layout(text: str, width: int, no_wrap: bool) -> list[str]:
    """The cell's lines at ``width``: each line cut with '…' (no-wrap), or word-wrapped."""
    out: list[str] = []
    for line in text.split("\n") or [""]:
        if len(line) <= width:
            out.append(line)
        elif no_wrap or " " not in line:
            out.append(line[: max(width - 1, 0)] + "…")
        else:
            out += _wrap(line, width)
    return out


def _wrap(line: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in line.split():
        if len(word) > width:
            word = word[: max(width - 1, 0)] + "…"
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    return [*lines, current] if current else lines or [""]
