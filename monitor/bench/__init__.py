"""Benchmarks that print figures (`civmon bench ...`); never timed tests."""
