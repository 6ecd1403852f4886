"""Where gpuarb keeps its files: the config, data and cache folders and everything derived from them.

Each folder is ``$GPUARB_<KIND>_DIR`` if set, else ``$XDG_<KIND>_HOME/gpuarb``, else the XDG default under the home
folder (``~/.config``, ``~/.local/share``, ``~/.cache``). Every function takes an optional environment mapping
(default ``os.environ``) so provider adapters can resolve paths from the context they were given; nothing here
touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP = "gpuarb"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _base(env: Mapping[str, str] | None, override: str, xdg: str, default: tuple[str, ...]) -> Path:
    """$override, else $xdg/gpuarb, else $HOME/<default>/gpuarb (empty variables count as unset)."""
    values = _env(env)
    if values.get(override):
        return Path(values[override])
    base = values.get(xdg) or str(Path(values.get("HOME") or Path.home()).joinpath(*default))
    return Path(base) / APP


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's config folder: $GPUARB_CONFIG_DIR, else $XDG_CONFIG_HOME/gpuarb, else ~/.config/gpuarb."""
    return _base(env, "GPUARB_CONFIG_DIR", "XDG_CONFIG_HOME", (".config",))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's data folder: $GPUARB_DATA_DIR, else $XDG_DATA_HOME/gpuarb, else ~/.local/share/gpuarb."""
    return _base(env, "GPUARB_DATA_DIR", "XDG_DATA_HOME", (".local", "share"))


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's cache folder: $GPUARB_CACHE_DIR, else $XDG_CACHE_HOME/gpuarb, else ~/.cache/gpuarb."""
    return _base(env, "GPUARB_CACHE_DIR", "XDG_CACHE_HOME", (".cache",))


# -- derived -----------------------------------------------------------------------------------------------------

def facts_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the user's replacements for the bundled fact tables live (``<config>/facts``)."""
    return config_dir(env) / "facts"


def onprem_config(env: Mapping[str, str] | None = None) -> Path:
    """The owned-capacity config file (``<config>/onprem.yaml``)."""
    return config_dir(env) / "onprem.yaml"


def ledger_file(env: Mapping[str, str] | None = None) -> Path:
    """The SQLite run ledger (``<data>/ledger.sqlite3``)."""
    return data_dir(env) / "ledger.sqlite3"


def run_logs_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where detached supervisors write their output, one ``<run id>.log`` each (``<data>/runs``)."""
    return data_dir(env) / "runs"


def checkpoints_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the local backend keeps each run's checkpoints, one folder per run id (``<data>/checkpoints``)."""
    return data_dir(env) / "checkpoints"


def ray_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the local Ray backend keeps its heads' state by default (``<data>/ray``, with ``~`` expanded)."""
    return data_dir(env).expanduser() / "ray"
