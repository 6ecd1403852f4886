"""Where gpuarb keeps its files: the config, data and cache folders and everything derived from them.

Each folder is ``$GPUARB_<KIND>_DIR`` if set, else ``$XDG_<KIND>_HOME/gpuarb``, else the XDG default under the home
folder (``~/.config``, ``~/.local/share``, ``~/.cache``). Every function takes an optional environment mapping
(default ``os.environ``) so provider adapters can resolve paths from the context they were given; the path
functions touch nothing on disk.

What gpuarb writes there (the ledger, run logs, caches, Ray state) may hold prices, job specs and logs, so it is
created private to the user: folders 0700 and files 0600, through ``private_dir``, ``open_private`` and
``write_private`` below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

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


# -- private files ---------------------------------------------------------------------------------------------

def private_dir(path: Path, *, own: bool = False) -> Path:
    """Create ``path`` (and missing parents) with the last folder 0700. An existing folder loses group/other access
    when it is gpuarb's alone: named ``gpuarb`` (the XDG defaults) or ``own`` (a subfolder gpuarb made); a folder
    the user named (``$GPUARB_DATA_DIR=~/work``) is left as it is. Returns ``path``."""
    try:
        path.mkdir(mode=0o700, parents=True)
        return path
    except FileExistsError:
        pass
    if own or path.name == APP:
        try:
            info = path.stat()
            if info.st_uid == os.getuid() and info.st_mode & 0o077:
                path.chmod(info.st_mode & 0o700)
        except OSError:
            pass  # not ours to change
    return path


def open_private(path: Path, mode: str = "ab") -> IO[Any]:
    """Open a file for writing, created 0600 if new (``mode``: 'ab', 'a', 'wb' or 'w')."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, the new file 0600 (a temp file beside it, then os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_private(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
