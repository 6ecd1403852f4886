"""The CLI's text tables: alignment, wrapping and cutting to a width (names and text before numbers), footers."""

from __future__ import annotations

import io

import pytest

from arbitrage.texttable import TextTable


def _table() -> TextTable:
    t = TextTable(title="Plan", caption="2 more not shown")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("Instance", no_wrap=True)
    t.add_column("Total", justify="right", no_wrap=True)
    t.add_column("Risk")
    t.add_row("1", "gpu-h100-sxm_8gpu-128vcpu-1600gb", "$866.73", "0.05/h docs")
    t.add_row("10", "p5.48xlarge", "$852.92", "0.234/h advisor 5-10%")
    return t


def test_natural_width_aligns_columns_under_an_underlined_header() -> None:
    lines = _table().render(200).splitlines()
    assert lines[0] == "Plan" and lines[-1] == "2 more not shown"
    assert lines[1].split() == ["#", "Instance", "Total", "Risk"]
    assert set(lines[2].replace(" ", "")) == {"─"}
    assert lines[3] == " 1  gpu-h100-sxm_8gpu-128vcpu-1600gb  $866.73  0.05/h docs"
    assert lines[4] == "10  p5.48xlarge                       $852.92  0.234/h advisor 5-10%"


@pytest.mark.parametrize("width", [60, 50, 40])
def test_a_narrow_width_wraps_text_and_cuts_names_but_keeps_every_number(width: int) -> None:
    text = _table().render(width)
    body = text.splitlines()[1:-1]
    assert all(len(line) <= width for line in body)
    assert "$866.73" in text and "$852.92" in text  # money is never cut while a name can give way
    assert "advisor" in text  # wrapped onto a second line, not cut
    if width < 60:
        assert "…" in text  # the long instance name gave way


def test_footer_closes_the_table_under_a_rule_and_rows_must_fit_the_columns() -> None:
    t = TextTable()
    t.add_column("team")
    t.add_column("USD", justify="right", footer="$12.50")
    t.add_row("ml", "$12.50")
    lines = t.render(80).splitlines()
    assert lines[-1].endswith("$12.50") and set(lines[-2].replace(" ", "")) == {"─"}
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        t.add_row("a", "b", "c")


def test_it_prints_through_a_rich_console_at_the_console_width() -> None:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=50, color_system=None).print(_table())
    assert buf.getvalue().rstrip("\n") == _table().render(50)
