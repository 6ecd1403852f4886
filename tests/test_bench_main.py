"""`python -m bench`: partial runs replace only their sections; the scaling catalog is seeded and sized."""

from __future__ import annotations

import sys

import pytest

from bench import __main__ as bench_main
from bench import scaling


def test_only_replaces_the_named_section_and_keeps_the_others(tmp_path, monkeypatch) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nold header\n\n## Plan quality\n\nold quality\n\n## CLI speed\n\nold cli table\n",
                   encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["bench", "--only", "quality", "--jobs", "3", "--out", str(out)])
    assert bench_main.main() == 0
    text = out.read_text(encoding="utf-8")
    assert "old quality" not in text and "gpuarb = optimum on **3 of 3** jobs" in text
    assert "## CLI speed\n\nold cli table" in text
    assert "Last run: `python -m bench --only quality`" in text
    assert text.index("## Plan quality") < text.index("## CLI speed")


def test_unknown_section_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["bench", "--only", "qualty"])
    with pytest.raises(SystemExit) as exc:
        bench_main.main()
    assert exc.value.code == 2
    assert "unknown section qualty" in capsys.readouterr().err


def test_split_keeps_preamble_and_sections() -> None:
    preamble, sections = bench_main._split("# B\n\nx\n## A\na\n## C\nc\n")
    assert preamble == "# B\n\nx\n"
    assert sections == {"## A": "## A\na\n", "## C": "## C\nc\n"}


def test_synthetic_catalog_is_seeded_and_keeps_the_snapshot_mix() -> None:
    first = scaling.synthetic_offers(2000, seed=1)
    assert len(first) == 2000
    assert first == scaling.synthetic_offers(2000, seed=1)
    assert first != scaling.synthetic_offers(2000, seed=2)
    base = len({(o.provider, o.region, o.zone, o.instance_type) for o in first[:900]})
    assert len({(o.provider, o.region, o.zone, o.instance_type) for o in first}) > base  # copies get new regions
