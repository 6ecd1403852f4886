"""gpuarb: pick the cheapest feasible GPU placement across clouds, then launch it."""

__version__ = "0.1.0"
