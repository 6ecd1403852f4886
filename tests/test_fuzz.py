"""Fuzzing with hypothesis: job specs, command lines and state files never give an internal error, never hang and
never pass when invalid. The oracles are bench/fuzz.py's (its longer seeded run fills BENCHMARKS.md); this suite
draws a few hundred cases and stays well under a minute.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import fuzz as Z

FAST = settings(max_examples=120, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(FAST, max_examples=40)

BASES = Z.base_specs()


def _clean(case: Any) -> None:
    outcome, detail = Z._classify(case)
    assert outcome == Z.CLEAN, detail


# -- job specs -------------------------------------------------------------------------------------------------

@FAST
@given(base=st.sampled_from(BASES), mutation=st.sampled_from(Z.SPEC_MUTATIONS))
def test_known_invalid_spec_values_are_refused_naming_file_line_and_field(base, mutation) -> None:
    text = Z.mutated_spec(base[1], *mutation)
    _clean(lambda: Z.check_spec(text, invalid=True))


@settings(FAST, max_examples=30)
@given(base=st.sampled_from(BASES), attack=st.integers(0, 100))
def test_whole_file_attacks_are_refused_fast(base, attack) -> None:
    label, text = Z.structural_specs(base[1])[attack % len(Z.structural_specs(base[1]))]
    _clean(lambda: Z.check_spec(text, invalid=label != "two documents"))


YAML_TOKENS = st.sampled_from([".inf", "-.inf", ".nan", "1e400", "-1e400", "0", "-0", "true", "false", "null", "~",
                               "9" * 4400, "2026-02-29", "2026-11-24T00:00:00Z", "'48h'", "0h", "!!binary aGk=",
                               "!foo x", "&a 1", "*a", "[]", "{}", "'H100:1e400'", "{H100: .inf}", "|\n  x",
                               "'" + "x" * 300 + "'"])


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return json.dumps(value)


YAML_VALUES = st.recursive(
    st.one_of(YAML_TOKENS, st.integers(-(10 ** 40), 10 ** 40).map(str), st.floats().map(_yaml_scalar),
              st.text(max_size=12).map(json.dumps), st.booleans().map(_yaml_scalar), st.none().map(lambda _: "null")),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
                            st.dictionaries(st.sampled_from(["H100", "gpu_hours", "size_gb", "x", "allow"]), inner,
                                            max_size=3)
                            .map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}")),
    max_leaves=6)


@FAST
@given(base=st.sampled_from(BASES), path=st.sampled_from(Z.SPEC_PATHS), raw=YAML_VALUES)
def test_random_values_are_refused_cleanly_or_accepted_within_the_limits(base, path, raw) -> None:
    text = Z.mutated_spec(base[1], path, raw)
    _clean(lambda: Z.check_spec(text, invalid=False))


@FAST
@given(text=st.text(alphabet=st.sampled_from(list("abHk01289:-_ .{}[]&*!|>'\"#\t\n%?,@`\\")), max_size=300))
def test_yaml_noise_never_crashes_the_parser(text: str) -> None:
    _clean(lambda: Z.check_spec(text, invalid=False))


# -- command lines ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def harness() -> Z.CliHarness:
    return Z.CliHarness()


NUMBER_TEXT = st.one_of(st.sampled_from(Z._BAD_NUMBERS), st.integers(-(10 ** 30), 10 ** 30).map(str),
                        st.floats().map(repr), st.integers(-5, 2000).map(str))


@SLOW
@given(option=st.sampled_from(Z.CLI_OPTIONS), value=NUMBER_TEXT)
def test_numeric_options_are_finite_and_bounded(harness, option, value: str) -> None:
    template, kind, low, high = option
    args = [a.replace("{}", value) for a in template]
    _clean(lambda: Z.check_cli(harness, args, invalid=not Z._number_in(value, kind, low, high)))


@SLOW
@given(command=st.sampled_from(["down", "status", "logs"]),
       run_id=st.one_of(st.sampled_from(Z._BAD_RUN_IDS), st.text(alphabet="%_*-0123456789ab ", max_size=7)))
def test_run_ids_never_match_empty_wildcard_or_short_prefixes(harness, command: str, run_id: str) -> None:
    _clean(lambda: Z.check_cli(harness, [command, run_id], invalid=True, codes=(1, 2)))


@settings(SLOW, max_examples=25)
@given(since=st.one_of(st.sampled_from(Z._BAD_SINCE), st.text(max_size=20)), which=st.sampled_from(Z._SINCE))
def test_since_values_are_read_or_refused(harness, since: str, which: list[str]) -> None:
    args = [a.replace("{}", since) for a in which]
    _clean(lambda: Z.check_cli(harness, args, invalid=since in Z._BAD_SINCE and since != "-5d"))


# -- state files -----------------------------------------------------------------------------------------------

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 20), 10 ** 20), st.floats(),
                        st.text(max_size=30))
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3)),
    max_leaves=8)


@FAST
@given(changes=st.dictionaries(st.sampled_from([*Z.GOOD_OFFER, "country", "available", "extra"]), JSON_VALUES,
                               max_size=3),
       top=st.dictionaries(st.sampled_from(["schema", "provider", "fetched_at", "failed_at", "offers"]), JSON_VALUES,
                           max_size=2))
def test_cache_files_are_read_sanely_or_ignored_and_kept(tmp_path_factory, changes, top) -> None:
    directory = tmp_path_factory.mktemp("cache")
    doc = {"schema": 1, "provider": "lambda", "fetched_at": "2026-11-23T11:00:00+00:00",
           "offers": [Z.GOOD_OFFER, {**Z.GOOD_OFFER, **changes}], **top}
    _clean(lambda: Z.check_cache(directory, doc, invalid=False))


@settings(FAST, max_examples=40)
@given(content=st.sampled_from(range(60)))
def test_known_corrupt_cache_entries_are_never_used(tmp_path_factory, content: int) -> None:
    import random

    cases = [c for c in Z.cache_docs(random.Random(0), 0) if c[1]]
    directory = tmp_path_factory.mktemp("cache")
    doc, invalid = cases[content % len(cases)]
    _clean(lambda: Z.check_cache(directory, doc, invalid))


@SLOW
@given(cell=st.sampled_from(Z._LEDGER_COLUMNS),
       value=st.one_of(st.sampled_from(Z._LEDGER_VALUES), st.text(max_size=20), st.integers(-(2 ** 63), 2 ** 63 - 1),
                       st.floats(), st.binary(max_size=8)))
def test_a_mutated_ledger_cell_never_crashes_a_reader(tmp_path_factory, cell, value) -> None:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"
    Z.fresh_ledger(path)
    _clean(lambda: Z.check_ledger(path, *cell, value))


@settings(SLOW, max_examples=30)
@given(field_name=st.sampled_from(sorted(Z.ONPREM)), value=st.one_of(st.sampled_from(Z._ONPREM_VALUES), JSON_LEAVES))
def test_onprem_fields_give_sane_offers_or_one_error(tmp_path_factory, field_name: str, value: Any) -> None:
    config = tmp_path_factory.mktemp("onprem")
    _clean(lambda: Z.check_onprem(config, field_name, value))


@settings(SLOW, max_examples=20)
@given(cell=st.sampled_from([*Z._FACT_COLUMNS, *(("assumptions.toml", a) for a in Z._ASSUMPTIONS)]),
       raw=st.one_of(st.sampled_from(Z._FACT_VALUES), st.floats().map(repr)))
def test_fact_overrides_load_sanely_or_fail_naming_the_table(tmp_path_factory, cell, raw: str) -> None:
    config: Path = tmp_path_factory.mktemp("config")
    _clean(lambda: Z.check_fact(config, *cell, raw))
