"""Where gpuarb keeps its files: $GPUARB_*_DIR, else $XDG_*_HOME/gpuarb, else the XDG default under $HOME."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NOW

from arbitrage import paths

KINDS = [
    (paths.config_dir, "GPUARB_CONFIG_DIR", "XDG_CONFIG_HOME", Path(".config")),
    (paths.data_dir, "GPUARB_DATA_DIR", "XDG_DATA_HOME", Path(".local") / "share"),
    (paths.cache_dir, "GPUARB_CACHE_DIR", "XDG_CACHE_HOME", Path(".cache")),
]


@pytest.mark.parametrize(("folder", "override", "xdg", "default"), KINDS)
def test_precedence_gpuarb_then_xdg_then_home(folder, override: str, xdg: str, default: Path) -> None:
    env = {"HOME": "/home/u", xdg: "/xdg", override: "/mine"}
    assert folder(env) == Path("/mine")
    del env[override]
    assert folder(env) == Path("/xdg/gpuarb")
    del env[xdg]
    assert folder(env) == Path("/home/u") / default / "gpuarb"


@pytest.mark.parametrize(("folder", "override", "xdg", "default"), KINDS)
def test_empty_variables_count_as_unset(folder, override: str, xdg: str, default: Path) -> None:
    assert folder({"HOME": "/home/u", override: "", xdg: ""}) == Path("/home/u") / default / "gpuarb"


def test_without_home_in_the_mapping_the_users_home_is_used() -> None:
    assert paths.cache_dir({}) == Path.home() / ".cache" / "gpuarb"


def test_default_is_the_process_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path / "cache"))
    assert (paths.config_dir(), paths.data_dir(), paths.cache_dir()) == (
        tmp_path / "cfg", tmp_path / "data", tmp_path / "cache")


def test_derived_paths() -> None:
    env = {"GPUARB_CONFIG_DIR": "/c", "GPUARB_DATA_DIR": "/d"}
    assert paths.facts_dir(env) == Path("/c/facts")
    assert paths.onprem_config(env) == Path("/c/onprem.yaml")
    assert paths.ledger_file(env) == Path("/d/ledger.sqlite3")
    assert paths.run_logs_dir(env) == Path("/d/runs")
    assert paths.checkpoints_dir(env) == Path("/d/checkpoints")
    assert paths.ray_state_dir(env) == Path("/d/ray")


def test_only_the_ray_state_dir_expands_a_tilde() -> None:
    # As before: the Ray backend's default expanded ~, the ledger's path never did.
    env = {"GPUARB_DATA_DIR": "~/gpuarb-data", "HOME": "/home/u"}
    assert paths.ledger_file(env) == Path("~/gpuarb-data/ledger.sqlite3")
    assert paths.ray_state_dir(env) == Path("~/gpuarb-data").expanduser() / "ray"


def test_the_ledger_and_the_providers_use_these_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      facts) -> None:
    from arbitrage.ledger import Ledger
    from providers.base import FetchContext
    from providers.onprem import config_path

    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    with Ledger.open() as ledger:
        assert ledger.path == tmp_path / "ledger.sqlite3"
    ctx = FetchContext(facts=facts, now=NOW, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    assert config_path(ctx) == tmp_path / "x" / "gpuarb" / "onprem.yaml"
