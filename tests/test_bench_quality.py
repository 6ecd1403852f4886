"""Plan-quality benchmark: a reproducible, varied job suite, and gpuarb equal to the brute-force optimum on it."""

from __future__ import annotations

import pytest

from bench import quality
from providers.snapshot import load_snapshot


def test_job_suite_is_reproducible_and_varied(facts) -> None:
    jobs = quality.make_jobs(40, seed=6, facts=facts)
    assert jobs == quality.make_jobs(40, seed=6, facts=facts)
    assert jobs != quality.make_jobs(40, seed=7, facts=facts)
    assert {j.num_nodes for j in jobs} >= {1, 2, 4}
    assert {j.spot for j in jobs} == {"never", "auto", "always"}
    assert {j.data.provider for j in jobs if j.data} == {"aws", "gcp", "azure"}
    assert max(j.data.size_gb for j in jobs if j.data) == 50000
    assert any(j.deadline is None for j in jobs) and any(j.deadline is not None for j in jobs)
    assert len({a.name for j in jobs for a in j.accelerators}) >= 5


def test_gpuarb_equals_the_brute_force_optimum_and_baselines_are_priced(facts) -> None:
    offers = load_snapshot(facts)
    results = quality.evaluate(quality.make_jobs(15, seed=11, facts=facts), offers, facts)
    for r in results:
        assert (r.gpuarb is None) == (r.optimum is None), r.spec.name
        if r.gpuarb is not None and r.optimum is not None:
            assert r.gpuarb.total_usd == pytest.approx(r.optimum.total_usd, rel=1e-9), r.spec.name
            for baseline in (r.naive, r.cheapest_listed):
                if baseline is not None and r.meets(baseline):
                    assert baseline.total_usd >= r.gpuarb.total_usd - 1e-6 or r.spec.interconnect == "preferred"
        assert r.naive is None or not r.naive.placement.spot
    assert any(r.gpuarb is not None for r in results)


def test_section_reports_the_match_and_totals(facts) -> None:
    text = quality.run(count=6, seed=3)
    assert text.startswith("## Plan quality")
    assert "gpuarb = optimum on **6 of 6** jobs" in text
    assert text.count("| job-") == 6
    assert "% less**" in text
