"""Benchmarks, grid specs (TOML), the sweep runner and the report."""
