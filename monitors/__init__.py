"""Monitors: specs, reference baselines, runners, typed findings and reports."""

__all__: list[str] = []
