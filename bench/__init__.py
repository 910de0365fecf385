"""Benchmarks (not tests): run each as a module, e.g. ``python -m bench.drift``."""

__all__: list[str] = []
