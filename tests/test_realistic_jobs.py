"""The realistic jobs in bench/jobs/ plan to picks an expert would accept (bench/realistic.py holds the checks)."""

from __future__ import annotations

import pytest

from bench import realistic


@pytest.fixture(scope="module")
def catalog():
    from arbitrage import app

    facts = app.load_facts()
    return facts, app.load_snapshot(facts)


def test_there_are_at_least_thirty_jobs() -> None:
    assert len(realistic.job_files()) >= 30


@pytest.mark.parametrize("path", realistic.job_files(), ids=lambda p: p.stem)
def test_top_pick_passes_the_expert_checks(path, catalog) -> None:
    facts, offers = catalog
    result = realistic.check_job(path, facts, offers)
    assert result.problems == (), result.pick


def test_small_gpu_jobs_plan_on_several_providers(catalog) -> None:
    facts, offers = catalog
    small = [realistic.check_job(p, facts, offers) for p in realistic.job_files()]
    small = [r for r in small if r.small_gpu]
    assert len(small) >= 5
    for r in small:  # 4x L4 boxes are sold by AWS (g6.12xlarge) and GCP (g2-standard-48) only
        assert r.providers_feasible >= 2, (r.job, r.pick, r.providers_feasible)
    singles = [r for r in small if r.job in {"10-l4-inference-small", "11-t4-embeddings", "12-a10g-sdxl",
                                             "31-us-only-small-gpu"}]
    assert len(singles) == 4 and all(r.providers_feasible >= 3 for r in singles), singles
