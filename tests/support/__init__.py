"""Helpers shared by the test suite (no fixtures here; see tests/conftest.py)."""
