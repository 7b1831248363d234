"""Benchmarks and load generators: each prints its figures and configuration (docs/performance.md)."""
