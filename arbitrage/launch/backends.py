"""Backend registry: a backend name on the command line -> its implementation, imported only when used."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from arbitrage.errors import UsageError

if TYPE_CHECKING:  # the registry itself stays cheap to import: `--backend` choices are read at CLI start-up
    from collections.abc import Callable

    from arbitrage.costmodel import Placement
    from arbitrage.launch.backend import Backend

# name -> (module, class); a new backend is one module implementing Backend plus one line here.
BACKENDS: dict[str, tuple[str, str]] = {
    "skypilot": ("arbitrage.launch.skypilot_backend", "SkyPilotBackend"),
    "local": ("arbitrage.launch.ray.backend", "RayBackend"),
}


# name -> "module:function" saying why a launch of a placement may not run at its planned price ('' when it pins
# exactly what was priced); `gpuarb plan` shows it, so the module must be cheap to import. A backend not listed
# launches at the planned price (the local backend rents nothing).
PRICE_NOTES: dict[str, str] = {
    "skypilot": "arbitrage.launch.skytask:price_estimate",
}


def price_note(name: str) -> Callable[[Placement], str]:
    """The function giving ``name``'s launch-price note for a placement ('' for every placement when none)."""
    if name not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {name!r} ({', '.join(BACKENDS)})")
    where = PRICE_NOTES.get(name)
    if where is None:
        return lambda placement: ""
    module_name, _, function = where.partition(":")
    found: Callable[[Placement], str] = getattr(importlib.import_module(module_name), function)
    return found


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (importing its module); UsageError naming the choices when unknown."""
    if name not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {name!r} ({', '.join(BACKENDS)})")
    module_name, class_name = BACKENDS[name]
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def make_backend(name: str, *, state_dir: Path, ray_address: str | None = None,
                 progress: TextIO | None = None) -> Backend:
    """Instantiate a backend by name from the command line's options (each backend takes what applies to it).

    ``state_dir`` is gpuarb's data directory; ``progress`` (default: stderr at call time) receives launch progress,
    so results on stdout stay clean.
    """
    from arbitrage.launch.backend import BackendOptions

    cls = backend_class(name)
    options = BackendOptions(data_dir=state_dir, address=ray_address,
                             progress=progress if progress is not None else sys.stderr)
    return cls.from_options(options)
