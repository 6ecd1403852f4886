"""Report output plumbing: format from --out's extension, safe writes, and a progress bar only on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from arbitrage.errors import UsageError
from arbitrage.report.output import choose_format, write_report
from arbitrage.report.progress import interactive, progress

ALL = ("table", "markdown", "csv", "json", "html")


@pytest.mark.parametrize(("out", "fmt", "expected"), [
    (None, None, "table"), ("-", "json", "json"), ("r.HTML", None, "html"), ("r.htm", None, "html"),
    ("x/r.md", None, "markdown"), ("r.csv", "csv", "csv"), ("r.txt", None, "table"), (None, "text", "table"),
])
def test_format_choice(out: str | None, fmt: str | None, expected: str) -> None:
    assert choose_format(out, fmt, ALL, "table") == expected


def test_text_means_the_plain_rendering_of_each_report() -> None:
    assert choose_format("b.txt", None, ("text", "markdown", "json"), "text") == "text"
    with pytest.raises(UsageError, match=r"unknown extension '\.csv'"):
        choose_format("b.csv", None, ("text", "markdown", "json"), "text")
    with pytest.raises(UsageError, match="html is not available"):
        choose_format(None, "html", ("text", "markdown", "json"), "text")


@pytest.mark.parametrize("out", ["report", "report.pdf", "report.html.bak"])
def test_unknown_extension(out: str) -> None:
    with pytest.raises(UsageError, match="--out: unknown extension"):
        choose_format(out, None, ALL, "table")


def test_write_report_is_atomic_and_says_where(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    assert write_report(str(target), "x" * 2048) == f"wrote {target} (2 KB)"
    assert write_report(str(target), "short") == f"wrote {target} (5 bytes, replaced the existing file)"
    assert target.read_text() == "short" and [p.name for p in tmp_path.iterdir()] == ["r.md"]
    with pytest.raises(UsageError, match="is a directory"):
        write_report(str(tmp_path), "x")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_nothing_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    quiet = io.StringIO()
    with progress("Fetching", total=2, stream=quiet) as step:
        step()
        step(description="Rendering")
    assert quiet.getvalue() == ""
    assert not interactive(quiet)


def test_progress_on_a_terminal_is_drawn_then_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Tty()
    with progress("Fetching prices", total=2, stream=tty) as step:
        step(description="Rendering html")
        step()
    drawn = tty.getvalue()
    assert "Fetching prices" in drawn and "2/2" in drawn
    assert drawn.endswith("\x1b[1A\x1b[2K")  # transient: the cursor goes back up and the bar's line is erased
    monkeypatch.setenv("CI", "true")
    assert not interactive(_Tty())
