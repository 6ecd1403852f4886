"""Which adapter module serves which provider. A new provider is one module plus one line here.

Modules are imported only when a live/cache refresh needs them, so the CLI stays fast.
CoreWeave has no price API: its adapter serves its published list (bundled, or the user's own file).
Nebius and Hyperbolic come from the SkyPilot catalogs and are served by the bundled snapshot alone.
"""

from __future__ import annotations

import importlib

from providers.base import Adapter

ADAPTER_MODULES: dict[str, str] = {
    "aws": "providers.aws",
    "gcp": "providers.gcp",
    "azure": "providers.azure",
    "lambda": "providers.lambda_cloud",
    "runpod": "providers.runpod",
    "vast": "providers.vast",
    "onprem": "providers.onprem",
    "coreweave": "providers.coreweave",
}


def get_adapter(name: str) -> Adapter:
    """The adapter for a provider id (its module's ADAPTER object)."""
    module = importlib.import_module(ADAPTER_MODULES[name])
    return module.ADAPTER

