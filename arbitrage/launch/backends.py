"""Backend registry: a backend name on the command line -> its implementation, imported only when used."""

from __future__ import annotations

from pathlib import Path

from arbitrage.errors import SpecError
from arbitrage.launch.backend import Backend

# name -> (module, class); a new backend is one module implementing Backend plus one line here.
BACKENDS: dict[str, tuple[str, str]] = {
    "skypilot": ("arbitrage.launch.skypilot_backend", "SkyPilotBackend"),
    "local": ("arbitrage.launch.ray_backend", "RayBackend"),
}


def make_backend(name: str, *, state_dir: Path, ray_address: str | None = None) -> Backend:
    """Instantiate a backend by name; the local backend keeps its Ray heads' state under ``state_dir``."""
    import importlib

    if name not in BACKENDS:
        raise SpecError(f"--backend: unknown backend {name!r} ({', '.join(BACKENDS)})")
    module_name, class_name = BACKENDS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    if name == "local":
        return cls(address=ray_address, state_dir=state_dir / "ray")
    if ray_address:
        raise SpecError("--ray-address only applies to --backend local")
    import sys

    return cls(progress=sys.stderr)  # SkyPilot's provisioning progress goes to stderr; results to stdout
