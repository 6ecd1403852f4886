"""gpuarb benchmarks: `python -m bench` measures and rewrites BENCHMARKS.md."""
