"""Benchmark suite for the rtportal conversation stream (not part of the package).

Run ``python bench/run.py --quick`` (or without ``--quick`` for the full run);
see ``docs/benchmarks.md`` for the method and the recorded figures.
"""
