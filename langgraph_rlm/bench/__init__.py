"""Benchmarks a user runs against their own model: generated tasks with known answers."""
