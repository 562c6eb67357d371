"""Shared goals, rollup tables and stored attribution results."""

__all__: list[str] = []
