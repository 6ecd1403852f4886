"""The fast glob matcher gives fnmatch.fnmatchcase's answer for every pattern, the fast shapes included."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from arbitrage.globs import glob_filter, glob_match

_CHARS = st.sampled_from([*"ap5.-x8g*?[]!", "48xlarge", "p5", "a3-"])
_TEXT = st.lists(_CHARS, max_size=8).map("".join)


@given(value=_TEXT, pattern=_TEXT)
def test_same_answers_as_fnmatchcase(value: str, pattern: str) -> None:
    assert glob_match(value, pattern) == fnmatch.fnmatchcase(value, pattern)


def test_the_fact_table_shapes() -> None:
    assert glob_match("p5.48xlarge", "p5.*") and not glob_match("p5e.48xlarge", "p5.*")
    assert glob_match("p5.48xlarge", "p5.48xlarge") and not glob_match("P5.48xlarge", "p5.48xlarge")
    assert glob_match("a3-highgpu-8g", "a3-*-8g") and glob_match("x", "*") and not glob_match("", "?")
    assert glob_filter(["aws", "gcp", "azure"], "a*") == ["aws", "azure"]
